"""What a board is called and described by: names checked once here (the CLI, the API and the
engine share these limits), and the error a board operation raises when asked something it cannot do."""

from __future__ import annotations

from engine.errors import SearchError
from engine.schema import MAX_NAME_CHARS, SAVED_NAME_RULE, saved_name

MAX_DESCRIPTION_CHARS = 500
MAX_BOARDS = 500  # definitions live in the collection metadata: kept small
MAX_BOARD_ADS = 10_000  # members of one board (listed whole for its order and its export)
MAX_IDS_PER_CALL = 1000  # ids one add or remove may name


class BoardError(SearchError):
    """A board operation that cannot run as asked (bad name, duplicate, unknown image id)."""


def check_name(name: object) -> str:
    """A board name as kept (engine.schema.saved_name), or BoardError saying what a name may be."""
    kept = saved_name(name)
    if kept is None:
        shown = str(name).strip()
        shown = shown if len(shown) <= MAX_NAME_CHARS else shown[:MAX_NAME_CHARS] + "..."
        raise BoardError(f"bad board name {shown!r}: {SAVED_NAME_RULE}")
    return kept


def check_description(text: object) -> str:
    """A description (plain text up to MAX_DESCRIPTION_CHARS, no control characters), or BoardError."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise BoardError("a board description is text")
    text = text.strip()
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise BoardError(f"a board description has at most {MAX_DESCRIPTION_CHARS} characters")
    if any(ord(c) < 32 and c not in "\n\t" or ord(c) == 127 for c in text):
        raise BoardError("a board description may not hold control characters")
    return text


def key(name: str) -> str:
    """What two names must differ in to be two boards: case does not count."""
    return name.casefold()
