"""Errors a user can act on. The CLI and API print their message as one line; no traceback."""


class AdsearchError(Exception):
    """Base of every user-facing error."""


class ClipUnavailable(AdsearchError):
    """The CLIP weights could not be loaded (no network and no local copy, or a broken folder)."""


class StoreError(AdsearchError):
    """A problem with the store the user can act on (in use, wrong dimensions, unreachable)."""


class SearchError(AdsearchError, ValueError):
    """A query that cannot run as asked (unknown mode, visual search without CLIP, ...)."""


class ImageError(AdsearchError, ValueError):
    """A file that is not a usable image; the message says why."""


class UsageError(AdsearchError, ValueError):
    """Bad command-line arguments."""


class NotFound(AdsearchError, LookupError):
    """No image with that id."""
