"""Text for a terminal: what the CLI prints about files (paths, reasons, OCR text, metadata values)
comes from folders, URLs and images nobody vetted. A file name holding an escape sequence could
clear the screen, or a newline and a carriage return could print a line of their own (a fake
summary). `printable` writes every control character as a visible escape, so each printed line is
exactly one line of plain text."""

from __future__ import annotations

import logging
import re
import traceback

# C0 controls (newline, carriage return, tab, ESC...), DEL, C1 controls, unpaired surrogates (file
# names that are not UTF-8), line and paragraph separators, and the bidirectional controls that can
# make text display in another order than it reads ("Trojan Source"); and the backslash itself, so
# that an escape in the output always means an escaped character.
_UNSAFE = re.compile(
    r"[\\\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """`value` as text with every control character escaped in Python's notation (`\\x1b`, `\\n`,
    `\\r`, `\\t`, `\\u202e`; a backslash as `\\\\`); other characters, accents and CJK included, as
    they are."""
    return _UNSAFE.sub(_escape, str(value))


def printable_lines(text: str) -> str:
    """Each line of `text` made printable; the line breaks between them kept."""
    return "\n".join(printable(line) for line in text.split("\n"))


# the lines of a traceback that are its own structure (frames, headers), not an exception's text
_TRACEBACK_LINES = ("Traceback (most recent call last)", "  File ")
_CHAINED = re.compile(r"\n(During handling of the above exception|The above exception was the direct cause)")


def printable_traceback(exc_type, value, tb) -> str:
    """A traceback as `traceback.format_exception` writes it, each exception's own text (which may
    name files) on one line: its newlines and control characters escaped; frames keep their lines."""
    parts = []
    for chunk in traceback.format_exception(exc_type, value, tb):
        text = chunk.rstrip("\n")
        structure = chunk.startswith(_TRACEBACK_LINES) or _CHAINED.match(chunk)
        parts.append(printable_lines(text) if structure else printable(text))
    return "\n".join(parts)


class PrintableFormatter(logging.Formatter):
    """A log formatter whose messages (and exceptions' texts in tracebacks) cannot carry control
    characters: every record prints as lines of plain text, none of them made by a file's name."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:
        return printable_traceback(*ei)

    def formatStack(self, stack_info: str) -> str:
        return printable_lines(super().formatStack(stack_info))
