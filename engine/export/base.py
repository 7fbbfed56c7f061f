"""What every export format shares: the columns a table declares, the `Writer` interface each format
implements (one module per format), the error a bad export raises, and the spool that turns a
writer's output into chunks for a streamed HTTP body."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, ClassVar, Literal

from engine.errors import SearchError

# Column kinds: what a value is, so a typed format (parquet) has a fixed schema from the first row.
Kind = Literal["string", "strings", "integer", "float", "bool", "datetime"]
KINDS: tuple[str, ...] = ("string", "strings", "integer", "float", "bool", "datetime")


class ExportError(SearchError):
    """An export that cannot run as asked (unknown format or field, unwritable file): the CLI prints
    it as one line (exit 2), the API answers 422."""


@dataclass(frozen=True)
class Column:
    """One column of an exported table: its name and its kind (None: inferred from the first rows)."""

    name: str
    kind: Kind | None = None


def as_columns(columns: Sequence[str | Column]) -> list[Column]:
    """Column names or Columns -> Columns; ExportError on an empty or repeated name."""
    out = [c if isinstance(c, Column) else Column(str(c)) for c in columns]
    names = [c.name for c in out]
    if not out or not all(names) or len(set(names)) != len(names):
        raise ExportError(f"an export needs distinct, non-empty column names, not {names}")
    return out


class Writer(ABC):
    """One export format: rows (dicts; a missing key is an empty cell) written to a binary sink as
    they come, so memory stays flat whatever the row count. Subclasses declare `name`, `media_type`
    and `suffix` and are registered in engine.export."""

    name: ClassVar[str]
    media_type: ClassVar[str]
    suffix: ClassVar[str]
    streams_to_stdout: ClassVar[bool] = True  # text formats; a binary one needs a file

    def __init__(self, sink: BinaryIO, columns: Sequence[Column]):
        self.sink = sink
        self.columns = list(columns)

    @abstractmethod
    def write(self, row: dict) -> None:
        """Write one row (or buffer it into the current group)."""

    def close(self) -> None:
        """Write what is buffered and the format's footer; the sink stays open."""
        self.sink.flush()


class Spool(io.RawIOBase):
    """A write-only binary file whose bytes are taken out as they accumulate (`drain`): a writer
    writes into it and the HTTP response sends each chunk. `tell` counts every byte written, as a
    file would (the parquet writer asks)."""

    def __init__(self):
        super().__init__()
        self._buffer = bytearray()
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        size = len(data)
        self._buffer += data
        self._written += size
        return size

    def tell(self) -> int:
        return self._written

    def pending(self) -> int:
        return len(self._buffer)

    def drain(self) -> bytes:
        """The bytes written since the last drain."""
        chunk = bytes(self._buffer)
        self._buffer.clear()
        return chunk
