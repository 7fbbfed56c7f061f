"""What a board is called and described by: names checked once here (the CLI, the API and the
engine share these limits), and the error a board operation raises when asked something it cannot do."""

from __future__ import annotations

import re
import unicodedata

from engine.errors import SearchError

MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 500
MAX_BOARDS = 500  # definitions live in the collection metadata: kept small
MAX_BOARD_ADS = 10_000  # members of one board (listed whole for its order and its export)
MAX_IDS_PER_CALL = 1000  # ids one add or remove may name
# letters (any script), digits, space, _ and -; starting with a letter or digit (never read as an
# option or a list), no double or trailing space; filters and facets read such names back unchanged
NAME = re.compile(r"^[^\W_](?:[\w-]| (?! )){0,63}(?<! )$")
NAME_RULE = (
    f"1 to {MAX_NAME_CHARS} letters, digits, spaces, _ or -, starting with a letter or digit "
    "(no double or trailing spaces)"
)


class BoardError(SearchError):
    """A board operation that cannot run as asked (bad name, duplicate, unknown image id)."""


def check_name(name: object) -> str:
    """A board name as given (surrounding spaces dropped), or BoardError saying what a name may be."""
    if not isinstance(name, str):
        raise BoardError(f"a board name is text: {NAME_RULE}")
    name = unicodedata.normalize("NFC", name.strip())  # one spelling of é, whatever the keyboard sent
    if len(name) > MAX_NAME_CHARS or not NAME.match(name):
        shown = name if len(name) <= MAX_NAME_CHARS else name[:MAX_NAME_CHARS] + "..."
        raise BoardError(f"bad board name {shown!r}: {NAME_RULE}")
    return name


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
