"""GET /api/boards/{name}/export and GET /api/trend/export over real HTTP (uvicorn on a localhost
port), checked against GET /api/boards/{name} and GET /api/trend on the same data: an app of its own
over a copy of the ingested sample, its ads dated 23 days apart (file_date) so a trend has many
periods."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import copy_of_sample, served_client

from api import create_app
from api.settings import ServeSettings
from engine.library import Library

BOARD = "Export Me"
SERIES = ["PNG=where: format=PNG", "JPEG=where: format=JPEG"]
TREND = {"field": "file_date", "by": "month", "series": SERIES}


@pytest.fixture(scope="module")
def export_library(tmp_path_factory, settings, encoders, ingested):
    def dated(number: int) -> str:
        return f"{(date(2022, 11, 3) + timedelta(days=23 * number)).isoformat()}T08:30:00+00:00"

    folder = copy_of_sample(ingested, tmp_path_factory.mktemp("board-trend-export-api-db"), dated)
    with Library(ServeSettings.serving(settings).with_overrides(db=folder), encoders=encoders) as library:
        yield library


@pytest.fixture(scope="module")
def http(export_library):
    with served_client(create_app(export_library), timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def board(http) -> list[str]:
    """A board of 7 ads put on it newest-ingested-last; its ids in the order they were added."""
    hits = http.get("/api/search", params={"k": 12}).json()["hits"]
    chosen = [h["id"] for h in reversed(hits[:7])]
    assert http.post("/api/boards", json={"name": BOARD}).status_code == 201
    assert http.post(f"/api/boards/{BOARD}/ads", json={"ids": chosen}).json()["added"] == chosen
    return chosen


def board_page_ids(http) -> list[str]:
    page = http.get(f"/api/boards/{BOARD}", params={"k": 100})
    assert page.status_code == 200, page.text
    data = page.json()
    assert len(data["hits"]) == data["count"] < 100  # the whole board on one page
    return [h["id"] for h in data["hits"]]


def download(http, path: str, **params) -> httpx.Response:
    answer = http.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer


def test_board_export_as_csv_holds_the_ids_the_board_shows(http, board):
    answer = download(http, f"/api/boards/{BOARD.lower()}/export", format="csv")
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="adsearch-board.csv"'
    assert answer.headers["x-export-rows"] == "every ad on the board"
    rows = list(csv.DictReader(io.StringIO(answer.text, newline="")))
    shown = board_page_ids(http)
    assert sorted(r["id"] for r in rows) == sorted(shown) and len(rows) == len(shown) == len(board)
    assert list(rows[0])[:4] == ["id", "added_order", "paths", "ocr_text"]
    assert [r["id"] for r in sorted(rows, key=lambda r: int(r["added_order"]))] == board
    for row in rows[:3]:
        payload = http.get(f"/api/images/{row['id']}").json()
        assert row["paths"].split(";") == payload["paths"] and int(row["width"]) == payload["width"]
    filtered = http.get("/api/search", params={"where": f"board={BOARD}", "k": 100}).json()["hits"]
    assert sorted(h["id"] for h in filtered) == sorted(r["id"] for r in rows)


def test_board_export_as_parquet_with_chosen_fields(http, board):
    answer = download(http, f"/api/boards/{BOARD}/export", format="parquet", fields="format,bytes")
    assert answer.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(pa.BufferReader(answer.content))
    assert table.column_names == ["id", "added_order", "paths", "ocr_text", "format", "bytes"]
    assert sorted(table.column("id").to_pylist()) == sorted(board_page_ids(http))
    assert str(table.schema.field("bytes").type) == "int64"
    for pid, size in zip(table.column("id").to_pylist(), table.column("bytes").to_pylist(), strict=True):
        assert http.get(f"/api/images/{pid}").json()["bytes"] == size


def test_board_export_needs_no_key(http, export_library, board):
    export_library.settings = export_library.settings.with_overrides(api_key="s3cret")
    try:
        assert http.post("/api/boards", json={"name": "Locked"}).status_code == 401  # a write: the key
        answer = http.get(f"/api/boards/{BOARD}/export", params={"format": "jsonl"})
        assert answer.status_code == 200  # a read, like GET /api/boards/{name}
        assert sorted(json.loads(line)["id"] for line in answer.text.splitlines()) == sorted(board)
    finally:
        export_library.settings = export_library.settings.with_overrides(api_key="")


def expected_trend_rows(answer: dict) -> list[dict]:
    """/api/trend's buckets as the export's rows (the labels here clash with no period column)."""
    rows = []
    for bucket in answer["buckets"]:
        row = {"start": bucket["start"], "end": bucket["end"], "period": bucket["label"]}
        for series in answer["series"]:
            label = series["label"]
            row |= {label: bucket["counts"][label], f"{label}_share": bucket["shares"][label]}
        rows.append(row)
    return rows


def test_trend_export_rows_equal_the_trend_buckets(http):
    answer = download(http, "/api/trend", **TREND).json()
    assert len(answer["buckets"]) > 3 and all(s["total"] > 0 for s in answer["series"])
    expected = expected_trend_rows(answer)
    jsonl = download(http, "/api/trend/export", format="jsonl", **TREND)
    assert jsonl.headers["content-disposition"] == 'attachment; filename="adsearch-trend.jsonl"'
    assert [json.loads(line) for line in jsonl.text.splitlines()] == expected
    parquet = download(http, "/api/trend/export", format="parquet", **TREND)
    table = pq.read_table(pa.BufferReader(parquet.content))
    assert table.column_names == list(expected[0])
    assert [t.isoformat() for t in table.column("end").to_pylist()] == [r["end"] for r in expected]
    for name in table.column_names[2:]:
        assert table.column(name).to_pylist() == [r[name] for r in expected]
    text = download(http, "/api/trend/export", **TREND).text  # csv by default
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [(r["period"], int(r["PNG"]), int(r["JPEG"])) for r in rows] == [
        (r["period"], r["PNG"], r["JPEG"]) for r in expected
    ]


def test_trend_export_of_a_clashing_label_keeps_every_column(http):
    params = {"field": "file_date", "by": "year", "series": ["end=where: format=PNG", "period=where:"]}
    answer = download(http, "/api/trend", **params).json()
    text = download(http, "/api/trend/export", format="csv", **params).text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    header = next(csv.reader(io.StringIO(text, newline="")))
    assert len(header) == len(set(header)) == 3 + 2 * 2
    assert [r["end"] for r in rows] == [b["end"] for b in answer["buckets"]]  # `end` is still the period's
    for column, label in ((header[3], "end"), (header[5], "period")):
        assert [int(r[column]) for r in rows] == [b["counts"][label] for b in answer["buckets"]]


@pytest.mark.parametrize(
    ("path", "params", "status", "reason"),
    [
        ("/api/boards/Nowhere/export", {}, 404, "no board named 'Nowhere'"),
        ("/api/boards/a%2Cb/export", {}, 422, "bad board name"),
        (f"/api/boards/{BOARD}/export", {"format": "xlsx"}, 422, "unknown export format 'xlsx'"),
        (f"/api/boards/{BOARD}/export", {"format": "x" * 17}, 422, "at most 16 characters"),
        (f"/api/boards/{BOARD}/export", {"fields": "ocr_words"}, 422, "unknown field 'ocr_words'"),
        (f"/api/boards/{BOARD}/export", {"fields": "added_order"}, 422, "always exported"),
        ("/api/trend/export", {"format": "pdf"}, 422, "unknown export format 'pdf'"),
        ("/api/trend/export", {"by": "decade"}, 422, "Input should be"),
        ("/api/trend/export", {"field": "format"}, 422, "not a date-time field"),
        ("/api/trend/export", {"series": "no label"}, 422, "bad series"),
        ("/api/trend/export", {"from": "2024-05-01", "to": "2024-01-01"}, 422, "is after to"),
    ],
)
def test_bad_exports_are_clear_4xx_before_the_body(http, board, path, params, status, reason):
    answer = http.get(path, params=params)
    assert answer.status_code == status, answer.text
    assert reason in answer.text
    assert answer.headers["content-type"].startswith("application/json")


def test_the_trend_routes_take_the_same_parameters(http):
    paths = http.get("/openapi.json").json()["paths"]
    trend, export = ({p["name"]: p for p in paths[path]["get"]["parameters"]}
                     for path in ("/api/trend", "/api/trend/export"))  # fmt: skip
    assert set(trend) == {"q", "where", "by", "field", "series", "top", "from", "to"}
    assert export.pop("format")["schema"]["maxLength"] == 16
    assert export == trend  # the same declarations, limits and descriptions
