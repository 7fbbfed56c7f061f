"""GET /api/export and /api/facets/export over real HTTP (uvicorn on a localhost port), checked against
/api/search and /api/facets on the same synthetic sample."""

from __future__ import annotations

import csv
import html as markup
import io
import json
import re

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


@pytest.fixture(scope="module")
def http(api_server):
    with httpx.Client(base_url=api_server, timeout=120) as client:
        yield client


def search_ids(http, **params) -> list[str]:
    answer = http.get("/api/search", params={"k": 100, **params})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert len(data["hits"]) < 100  # the whole ranking fits one page: comparable with the export
    return [h["id"] for h in data["hits"]]


def export(http, **params) -> httpx.Response:
    answer = http.get("/api/export", params=params)
    assert answer.status_code == 200, answer.text
    return answer


def test_csv_export_of_a_browse_holds_every_image_and_opens_with_the_csv_module(http):
    answer = export(http, format="csv")
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="adsearch-export.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.text, newline="")))
    every = search_ids(http)
    assert sorted(r["id"] for r in rows) == sorted(every) and len(rows) == len(every)
    assert list(rows[0])[:3] == ["id", "paths", "ocr_text"]
    assert {"format", "width", "height", "has_text", "ingested_at", "sha256"} <= set(rows[0])
    payload = http.get(f"/api/images/{rows[0]['id']}").json()
    assert rows[0]["paths"].split(";") == payload["paths"] and int(rows[0]["width"]) == payload["width"]


def test_parquet_export_of_a_query_has_the_ids_of_the_search_in_order(http):
    params = {"q": "sale", "mode": "hybrid"}
    ids = search_ids(http, **params)
    answer = export(http, format="parquet", **params)
    assert answer.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(pa.BufferReader(answer.content))
    assert table.column("id").to_pylist() == ids
    assert table.column("rank").to_pylist() == list(range(1, len(ids) + 1))
    assert {"score", "rank_image", "rank_text", "rank_keywords"} <= set(table.column_names)
    hits = http.get("/api/search", params={"k": 100, **params}).json()["hits"]
    assert table.column("score").to_pylist() == [h["score"] for h in hits]
    assert table.column("rank_keywords").to_pylist() == [
        h["channels"].get("keywords", {}).get("rank") for h in hits
    ]


def test_jsonl_export_with_a_filter_and_chosen_fields(http):
    ids = search_ids(http, where="format=PNG")
    answer = export(http, format="jsonl", where="format=PNG", fields="format,width")
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in answer.text.splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert all(list(r) == ["id", "paths", "ocr_text", "format", "width"] for r in rows)
    assert {r["format"] for r in rows} == {"PNG"}


def test_facet_counts_export_equals_the_facets_route(http):
    counts = http.get("/api/facets", params={"field": "format"}).json()["values"]
    answer = http.get("/api/facets/export", params={"field": "format", "format": "csv"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == 'attachment; filename="adsearch-facets.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.text, newline="")))
    assert [(r["value"], int(r["count"])) for r in rows] == [(c["value"], c["count"]) for c in counts]


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("/api/export", {"format": "xml"}, "unknown export format 'xml'"),
        ("/api/export", {"format": "x" * 17}, "at most 16 characters"),
        ("/api/export", {"fields": "colour"}, "unknown field 'colour'"),
        ("/api/export", {"fields": "ocr_words"}, "unknown field 'ocr_words'"),
        ("/api/export", {"fields": "id"}, "'id' is always exported"),
        ("/api/export", {"where": "colour=red"}, "unknown field 'colour'"),
        ("/api/export", {"where": "width>=wide"}, "not a valid integer"),
        ("/api/export", {"q": "x" * 2001}, "at most 2000 characters"),
        ("/api/export", {"q": "sale", "mode": "bogus"}, "Input should be"),
        ("/api/export", {"q": "sale", "weights": "image=nope"}, "is not a number"),
        ("/api/export", {"fields": ",".join(f"f{i}" for i in range(101))}, "at most 100 fields"),
        ("/api/facets/export", {"field": "ocr_text"}, "cannot count values of 'ocr_text'"),
        ("/api/facets/export", {"field": "format", "format": "pdf"}, "unknown export format 'pdf'"),
    ],
)
def test_bad_exports_are_422_with_the_reason(http, path, params, reason):
    answer = http.get(path, params=params)
    assert answer.status_code == 422, answer.text
    assert reason in answer.text


def download_links(html: str) -> dict[str, str]:
    """format -> href of the search page's Download menu."""
    menu = re.search(r'<details class="download">(.*?)</details>', html, re.S)
    assert menu, "the page has no Download menu"
    links = re.findall(r'<a href="(/api/export\?[^"]+)" download>(\w+)</a>', menu.group(1))
    return {label.lower(): markup.unescape(href) for href, label in links}


def test_the_search_page_download_menu_exports_the_page_query(http):
    page = http.get("/", params={"q": "sale", "mode": "keyword", "where": "format=PNG"})
    assert page.status_code == 200
    links = download_links(page.text)
    assert set(links) == {"csv", "jsonl", "parquet"}
    answer = http.get(links["parquet"])
    assert answer.status_code == 200, answer.text
    table = pq.read_table(pa.BufferReader(answer.content))
    assert table.column("id").to_pylist() == search_ids(http, q="sale", mode="keyword", where="format=PNG")
    browse = download_links(http.get("/", params={"where": "format=PNG"}).text)
    rows = list(csv.DictReader(io.StringIO(http.get(browse["csv"]).text, newline="")))
    assert sorted(r["id"] for r in rows) == sorted(search_ids(http, where="format=PNG"))
    image_id = rows[0]["id"]
    image_page = http.get(f"/images/{image_id}")
    assert image_page.status_code == 200 and 'class="download"' not in image_page.text
