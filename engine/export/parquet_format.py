"""Parquet (pyarrow): a fixed schema from the columns' kinds, rows written in row groups of
ROW_GROUP rows, so at most one group is held in memory."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.export.base import Column, Writer

ROW_GROUP = 2000


def _arrow_type(kind: str | None):
    import pyarrow as pa

    types = {"string": pa.string(), "strings": pa.list_(pa.string()), "integer": pa.int64(),
             "float": pa.float64(), "bool": pa.bool_(), "datetime": pa.timestamp("us", tz="UTC")}  # fmt: skip
    return types.get(kind) if kind else None


def _timestamp(value: object) -> datetime | None:
    """An ISO date-time (as payloads store them) as an aware datetime; None if it is not one."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _typed(value: object, column: Column) -> object:
    """A value as its column's arrow type takes it (a value of another type: null)."""
    if value is None:
        return None
    kind = column.kind
    if kind == "datetime":
        return _timestamp(value)
    if kind == "strings":
        return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    if kind == "string":
        return str(value)
    if kind == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "float":
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "bool":
        return value if isinstance(value, bool) else None
    return value


class ParquetWriter(Writer):
    name = "parquet"
    media_type = "application/vnd.apache.parquet"
    suffix = ".parquet"
    streams_to_stdout = False  # binary: to a file or an HTTP body

    def __init__(self, sink, columns):
        super().__init__(sink, columns)
        self._rows: list[dict] = []
        self._writer = None  # opened with the first group: untyped columns take its inferred types

    def write(self, row: dict) -> None:
        self._rows.append({c.name: _typed(row.get(c.name), c) for c in self.columns})
        if len(self._rows) >= ROW_GROUP:
            self._flush_group()

    def _flush_group(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self.sink, self._schema(pa))
        table = pa.Table.from_pylist(self._rows, schema=self._writer.schema)
        self._writer.write_table(table, row_group_size=ROW_GROUP)
        self._rows = []

    def _schema(self, pa):
        """The columns' arrow types; a column without a kind takes the type pyarrow infers from
        the first group (string when every value there is null)."""
        inferred = pa.Table.from_pylist(self._rows).schema if self._rows else None
        fields = []
        for column in self.columns:
            kind = _arrow_type(column.kind)
            if kind is None and inferred is not None and column.name in inferred.names:
                kind = inferred.field(column.name).type
            fields.append(
                pa.field(column.name, kind if kind is not None and kind != pa.null() else pa.string())
            )
        return pa.schema(fields)

    def close(self) -> None:
        if self._rows or self._writer is None:
            self._flush_group()
        self._writer.close()
        super().close()
