"""Boards (swipe files): named sets of ads a user keeps. Definitions live in the collection metadata,
membership in each ad's payload (`boards`), so `--where board=NAME` and `facets board` work like any
field (engine.boards.boards); names and limits are engine.boards.names'."""

from engine.boards.boards import METADATA_KEY, ORDER_FIELD, Boards
from engine.boards.names import (
    MAX_BOARD_ADS,
    MAX_BOARDS,
    MAX_DESCRIPTION_CHARS,
    MAX_IDS_PER_CALL,
    MAX_NAME_CHARS,
    BoardError,
    check_name,
)

__all__ = [
    "MAX_BOARDS", "MAX_BOARD_ADS", "MAX_DESCRIPTION_CHARS", "MAX_IDS_PER_CALL", "MAX_NAME_CHARS",
    "METADATA_KEY", "ORDER_FIELD", "BoardError", "Boards", "check_name",
]  # fmt: skip
