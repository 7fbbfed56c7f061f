"""CSV: one header line, then a line per row; lists joined with `;`, cells that a spreadsheet would
run as a formula neutralised (OWASP "CSV injection")."""

from __future__ import annotations

import csv
import io

from engine.export.base import Writer

LIST_SEPARATOR = ";"
# A cell starting with one of these is a formula (or starts one) in Excel, LibreOffice and Google
# Sheets: OWASP's list (https://owasp.org/www-community/attacks/CSV_Injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"  # prefixed to such a cell: the spreadsheet shows it as text


def neutralise(text: str) -> str:
    """`text` with a leading `'` when a spreadsheet would read it as a formula."""
    return NEUTRALISER + text if text.startswith(FORMULA_STARTS) else text


def cell(value: object) -> str:
    """One value as CSV text: empty for none, lists joined with `;`, booleans as true/false; text
    (not numbers: `-3` stays a number) neutralised against formula injection."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return neutralise(LIST_SEPARATOR.join("" if v is None else str(v) for v in value))
    return neutralise(str(value))


class CsvWriter(Writer):
    name = "csv"
    media_type = "text/csv; charset=utf-8"
    suffix = ".csv"

    def __init__(self, sink, columns):
        super().__init__(sink, columns)
        # UTF-8; a name that is not (an escaped file name's lone surrogate) is written as its escape
        self._text = io.TextIOWrapper(sink, encoding="utf-8", errors="backslashreplace", newline="")
        self._csv = csv.writer(self._text, lineterminator="\r\n")
        self._csv.writerow([neutralise(c.name) for c in self.columns])

    def write(self, row: dict) -> None:
        self._csv.writerow([cell(row.get(c.name)) for c in self.columns])

    def close(self) -> None:
        self._text.flush()
        self._text.detach()  # the sink is the caller's: flushed, left open
        super().close()
