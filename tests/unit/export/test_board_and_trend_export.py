"""Board rows and trend tables as exports (issue 23): engine.export.rows.board_export,
engine.export.trend_rows.trend_export and their CLI faces (`board export NAME --format`, `trend
--format`), on a copy of the ingested sample whose `file_date`s are spread over months here, so a
trend has many periods. Every expectation comes from the store or from the engine's own answers
(boards.ids, library.trend, `trend --json`), never from labels."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pyarrow.parquet as pq
import pytest
from helpers import adsearch, copy_of_sample

from engine.analysis import TrendRequest
from engine.boards import BoardError
from engine.errors import NotFound, SearchError
from engine.export import write_rows
from engine.export.base import ExportError
from engine.export.rows import ADDED_ORDER, board_export
from engine.export.trend_rows import PERIOD_COLUMNS, series_columns, trend_export
from engine.library import Library
from engine.search.request import SearchRequest

BOARD = "Keep Export"
SERIES = ("PNG=where: format=PNG", "JPEG=where: format=JPEG")


@pytest.fixture(scope="module")
def db(tmp_path_factory, ingested):
    """A copy of the ingested sample, each ad dated 19 days after the previous one (file_date), with
    a board of 6 ads put on it out of id order and one taken off again. Closed: the CLI opens it too."""

    def dated(number: int) -> str:
        return f"{(date(2023, 1, 5) + timedelta(days=19 * number)).isoformat()}T12:00:00+00:00"

    return copy_of_sample(ingested, tmp_path_factory.mktemp("board-trend-export-db"), dated)


@pytest.fixture(scope="module")
def board_ids(db, settings, encoders) -> list[str]:
    """The board's ads in the order they were put on it (the engine's own order)."""
    with Library(settings.with_overrides(db=db), encoders=encoders) as library:
        ids = [pid for pid, _ in library.store.scroll(fields=["sha256"])]
        chosen = [ids[5], ids[1], ids[9], ids[0], ids[7], ids[3]]  # not in id order
        library.boards.create(BOARD, "")
        library.boards.add(BOARD, chosen)
        library.boards.remove(BOARD, [ids[9]])  # a gap in the addition numbers
        return library.boards.ids(BOARD)


@pytest.fixture
def library(db, settings, encoders, board_ids):
    with Library(settings.with_overrides(db=db), encoders=encoders) as opened:
        yield opened


def env_of(db, tiny_clip_dir) -> dict:
    return {"ADSEARCH_DB": str(db), "ADSEARCH_CLIP_MODEL": str(tiny_clip_dir)}


# ---------------------------------------------------------------------------- boards (engine)


def test_a_board_export_holds_every_ad_on_it_with_its_addition_order(library, board_ids):
    export = board_export(library, BOARD.upper())  # case does not count, as everywhere
    names = [c.name for c in export.columns]
    assert names[:4] == ["id", ADDED_ORDER, "paths", "ocr_text"]
    assert {"format", "width", "sha256", "file_date"} <= set(names) and "boards" not in names
    rows = list(export.rows)
    assert sorted(r["id"] for r in rows) == sorted(board_ids) and len(rows) == len(board_ids) == 5
    by_order = sorted(rows, key=lambda r: r[ADDED_ORDER])
    assert [r["id"] for r in by_order] == board_ids  # sorted by added_order: the order added
    assert len({r[ADDED_ORDER] for r in rows}) == len(rows)
    stored = library.store.retrieve(board_ids)
    for row in rows:
        assert row["paths"] == stored[row["id"]]["paths"]
        assert row["format"] == stored[row["id"]]["format"] and row["width"] == stored[row["id"]]["width"]
    browsed = library.search(SearchRequest(where=[f"board={BOARD}"], k=100))  # the board as a filter
    assert sorted(h.id for h in browsed.hits) == sorted(r["id"] for r in rows)


def test_a_board_export_with_chosen_fields_and_errors_before_the_first_row(library, board_ids):
    export = board_export(library, BOARD, ["format", "bytes"])
    assert [c.name for c in export.columns] == ["id", ADDED_ORDER, "paths", "ocr_text", "format", "bytes"]
    assert all(
        list(row) == ["id", ADDED_ORDER, "paths", "ocr_text", "format", "bytes"] for row in export.rows
    )
    with pytest.raises(NotFound, match="no board named"):
        board_export(library, "Not There")  # raised by the call, not by the first row
    with pytest.raises(BoardError, match="bad board name"):
        board_export(library, "a,b")
    with pytest.raises(ExportError, match="always exported"):
        board_export(library, BOARD, [ADDED_ORDER])
    with pytest.raises(ExportError, match="unknown field 'ocr_words'"):
        board_export(library, BOARD, ["ocr_words"])


def test_a_board_export_writes_typed_parquet(library, board_ids, tmp_path):
    export = board_export(library, BOARD)
    out = tmp_path / "board.parquet"
    assert write_rows(export.rows, export.columns, "parquet", out) == len(board_ids)
    table = pq.read_table(out)
    assert str(table.schema.field(ADDED_ORDER).type) == "int64"
    assert str(table.schema.field("paths").type) == "list<element: string>"
    assert sorted(table.column("id").to_pylist()) == sorted(board_ids)


# ---------------------------------------------------------------------------- trends (engine)


@pytest.mark.parametrize(
    "labels",
    [
        ["PNG", "JPEG"],
        ["start", "end", "period"],
        ["A", "A_share", "A_share_share"],
        ["end", "end_2", "end_share", "end_share_2", "x"],
        ["period_share", "period", "period_2", "Start", "start_share"],
    ],
)
def test_series_columns_are_unique_and_keep_each_label_when_free(labels):
    names = series_columns(labels)
    every = [*PERIOD_COLUMNS, *(n for pair in names.values() for n in pair)]
    assert len(every) == len(set(every)) == len(PERIOD_COLUMNS) + 2 * len(labels)
    for label, (count, share) in names.items():
        assert count == label or (label in PERIOD_COLUMNS and count.startswith(f"{label}_"))
        assert share.startswith(f"{label}_share")
    assert series_columns(labels) == names  # the same labels, the same names


def test_series_columns_follow_the_documented_rule():
    assert series_columns(["end", "A", "A_share"]) == {
        "end": ("end_2", "end_share"), "A": ("A", "A_share_2"), "A_share": ("A_share", "A_share_share"),
    }  # fmt: skip


def rows_of_answer(answer: dict) -> list[dict]:
    """What each export row must hold, from library.trend's buckets."""
    names = series_columns([s["label"] for s in answer["series"]])
    rows = []
    for bucket in answer["buckets"]:
        row = {"start": bucket["start"], "end": bucket["end"], "period": bucket["label"]}
        for label, (count, share) in names.items():
            row |= {count: bucket["counts"][label], share: bucket["shares"][label]}
        rows.append(row)
    return rows


def test_a_trend_export_has_a_row_per_period_equal_to_the_trend(library):
    request = TrendRequest(field="file_date", by="month", series=SERIES)
    answer = library.trend(request)
    assert len(answer["buckets"]) > 3 and all(s["total"] > 0 for s in answer["series"])
    export = trend_export(library, request)
    names = series_columns(["PNG", "JPEG"])
    assert [c.name for c in export.columns] == [*PERIOD_COLUMNS, *names["PNG"], *names["JPEG"]]
    assert [c.kind for c in export.columns] == ["datetime", "datetime", "string", "integer", "float",
                                                "integer", "float"]  # fmt: skip
    rows = list(export.rows)
    assert rows == rows_of_answer(answer)
    assert export.what == f"{len(rows)} periods of file_date by month"
    # the counts add up to what the store holds in each format
    for label in ("PNG", "JPEG"):
        expected = library.store.count(where=library.payload_fields.parse_where([f"format={label}"]))
        assert sum(r[label] for r in rows) == expected


def test_labels_named_like_the_period_columns_get_their_own_columns(library, tmp_path):
    series = ("end=where: format=PNG", "end_share=where: format=JPEG", "period=where:")
    request = TrendRequest(field="file_date", by="year", series=series)
    answer = library.trend(request)
    export = trend_export(library, request)
    names = [c.name for c in export.columns]
    assert len(names) == len(set(names)) == 3 + 2 * len(series)
    expected = rows_of_answer(answer)
    out = tmp_path / "trend.csv"
    write_rows(export.rows, export.columns, "csv", out)
    with out.open(newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == names
    for row, want in zip(read, expected, strict=True):
        assert row["start"] == want["start"] and row["period"] == want["period"]
        counts = {n: int(row[n]) for n in names[3::2]}
        assert counts == {n: want[n] for n in names[3::2]}
    every = series_columns(["end", "end_share", "period"])["period"][0]  # `period=where:`: every ad
    assert sum(int(r[every]) for r in read) == library.store.count()


def test_a_bad_trend_is_an_error_before_any_row(library):
    with pytest.raises(SearchError, match="not a date-time field"):
        trend_export(library, TrendRequest(field="format"))


# ---------------------------------------------------------------------------- the CLI


def test_cli_board_export_as_jsonl_to_a_file(db, tiny_clip_dir, board_ids, tmp_path):
    out = tmp_path / "keep.jsonl"
    done = adsearch("board", "export", "keep export", "--format", "jsonl", "--out", str(out),
                    "--fields", "format,width", env_extra=env_of(db, tiny_clip_dir))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {len(board_ids)} rows (every ad on the board) as jsonl to {out}"
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(list(r) == ["id", ADDED_ORDER, "paths", "ocr_text", "format", "width"] for r in rows)
    assert [r["id"] for r in sorted(rows, key=lambda r: r[ADDED_ORDER])] == board_ids


def test_cli_board_export_csv_to_stdout_and_the_zip_still_works(db, tiny_clip_dir, board_ids, tmp_path):
    env = env_of(db, tiny_clip_dir)
    done = adsearch("board", "export", BOARD, "--format", "csv", env_extra=env)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout, newline="")))
    assert sorted(r["id"] for r in rows) == sorted(board_ids)
    assert "wrote 5 rows" in done.stderr
    out = tmp_path / "keep.zip"
    zipped = adsearch("board", "export", BOARD, "--zip", str(out), env_extra=env)
    assert zipped.returncode == 0, zipped.stderr
    assert "images and manifest.csv" in zipped.stdout and out.is_file()


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--zip", "b.zip", "--format", "csv"], "not both"),
        (["--zip", "b.zip", "--out", "b.csv"], "not both"),
        ([], "give --zip FILE"),
        (["--zip", "b.zip", "--fields", "format"], "--fields"),
        (["--format", "xml"], "unknown export format 'xml'"),
        (["--format", "parquet"], "binary format"),
        (["--format", "csv", "--json"], "--json"),
    ],
)
def test_cli_board_export_asks_for_exactly_one_output(db, tiny_clip_dir, tmp_path, flags, reason):
    flags = [str(tmp_path / f) if f.endswith((".zip", ".csv")) else f for f in flags]
    done = adsearch("board", "export", BOARD, *flags, env_extra=env_of(db, tiny_clip_dir))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("adsearch: error:") and reason in lines[0], done.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_cli_trend_export_equals_the_trend_json(db, tiny_clip_dir, tmp_path):
    env = env_of(db, tiny_clip_dir)
    flags = ["--field", "file_date", "--by", "month", *(f for s in SERIES for f in ("--series", s))]
    listed = adsearch("trend", *flags, "--json", env_extra=env)
    assert listed.returncode == 0, listed.stderr
    answer = json.loads(listed.stdout)
    out = tmp_path / "trend.parquet"  # the format from the suffix
    done = adsearch("trend", *flags, "--out", str(out), env_extra=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(f"wrote {len(answer['buckets'])} rows (")
    table = pq.read_table(out)
    expected = rows_of_answer(answer)
    assert table.column("period").to_pylist() == [r["period"] for r in expected]
    assert [t.isoformat() for t in table.column("start").to_pylist()] == [r["start"] for r in expected]
    for name in table.column_names[3:]:
        assert table.column(name).to_pylist() == [r[name] for r in expected]
    bad = adsearch("trend", *flags, "--json", "--format", "csv", env_extra=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
