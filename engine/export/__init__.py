"""Export: tables (search and browse results, facet counts, boards, trends) written as CSV, JSON Lines
or Parquet, streamed row by row so memory stays flat whatever the row count.

The formats are a registry (name -> Writer with its media type and file suffix: base.py), one module a
format; `write_rows` writes any rows to a file or a binary stream, `stream_rows` yields them as byte
chunks for an HTTP body. rows.py makes the rows of the library's own tables."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from engine.export.base import KINDS, Column, ExportError, Spool, Writer, as_columns
from engine.export.csv_format import CsvWriter, neutralise
from engine.export.jsonl_format import JsonlWriter
from engine.export.parquet_format import ParquetWriter

__all__ = [
    "KINDS", "Column", "ExportError", "Writer", "format_names", "neutralise", "register", "stream_rows",
    "write_rows", "writer_for",
]  # fmt: skip

CHUNK_BYTES = 1 << 16  # a streamed body is sent in chunks of about this size
_WRITERS: dict[str, type[Writer]] = {}


def register(writer: type[Writer]) -> None:
    """Add a format (a Writer subclass with its name, media type and suffix); a name is taken once."""
    if writer.name in _WRITERS:
        raise ValueError(f"export format '{writer.name}' is registered twice")
    _WRITERS[writer.name] = writer


def format_names() -> tuple[str, ...]:
    """The registered formats, in registration order."""
    return tuple(_WRITERS)


def writer_for(name: str) -> type[Writer]:
    """The Writer of format `name`; ExportError naming the formats there are."""
    try:
        return _WRITERS[name]
    except (KeyError, TypeError):
        raise ExportError(f"unknown export format '{name}': use one of {', '.join(_WRITERS)}") from None


for _builtin in (CsvWriter, JsonlWriter, ParquetWriter):
    register(_builtin)


def write_rows(
    rows: Iterable[dict], columns: Sequence[str | Column], format: str, out: str | Path | BinaryIO | None
) -> int:
    """Write `rows` (dicts; the columns in order, a missing key an empty cell) as `format` to the file
    `out` (written beside it, then renamed: never half a file under the name), or to a binary stream,
    or (None) to standard output for a text format. Returns the number of rows; ExportError for an
    unknown format or an unwritable file."""
    kind, columns = writer_for(format), as_columns(columns)
    if out is None:
        if not kind.streams_to_stdout:
            raise ExportError(f"{format} is a binary format: give a file to write it to (--out FILE)")
        out = sys.stdout.buffer
    if not isinstance(out, str | Path):
        return _write(rows, kind(out, columns))
    path = Path(out)
    partial = path.with_name(f".{path.name}.partial")
    try:
        sink = partial.open("wb")
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with sink:
            count = _write(rows, kind(sink, columns))
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def _write(rows: Iterable[dict], writer: Writer) -> int:
    count = 0
    for row in rows:
        writer.write(row)
        count += 1
    writer.close()
    return count


def stream_rows(rows: Iterable[dict], columns: Sequence[str | Column], format: str) -> Iterator[bytes]:
    """`rows` as `format`, in chunks of about CHUNK_BYTES as they are written (an HTTP body). The
    format and columns are checked when this is called, before the first chunk."""
    writer = writer_for(format)(Spool(), as_columns(columns))
    return _chunks(rows, writer)


def _chunks(rows: Iterable[dict], writer: Writer) -> Iterator[bytes]:
    spool = writer.sink
    for row in rows:
        writer.write(row)
        if spool.pending() >= CHUNK_BYTES:
            yield spool.drain()
    writer.close()
    if spool.pending():
        yield spool.drain()
