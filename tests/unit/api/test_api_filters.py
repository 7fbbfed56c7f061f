"""Filters, facets and browsing over real HTTP (uvicorn on a localhost port), against the synthetic
sample: every answer is checked against the images' own payloads."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest


@pytest.fixture(scope="module")
def http(api_server):
    with httpx.Client(base_url=api_server, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def payloads(http) -> dict[str, dict]:
    """Every image's payload (id -> /api/images/{id}), found by browsing without filters."""
    ids = browse_all(http)
    assert len(ids) == http.get("/health").json()["images"]
    return {i: http.get(f"/api/images/{i}").json() for i in ids}


def browse_all(http, where: tuple[str, ...] = (), k: int = 100, **params) -> list[str]:
    """The ids of every image matching `where`, page by page, in the browse order."""
    ids: list[str] = []
    while True:
        data = http.get("/api/search", params={"where": list(where), "k": k, "offset": len(ids), **params})
        assert data.status_code == 200, data.text
        hits = data.json()["hits"]
        ids += [h["id"] for h in hits]
        if len(hits) < k:
            return ids


def search(http, **params) -> dict:
    answer = http.get("/api/search", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_sample_has_what_these_tests_need(payloads):
    formats = Counter(p["format"] for p in payloads.values())
    assert set(formats) >= {"PNG", "JPEG"} and len(payloads) >= 10
    assert {p["has_text"] for p in payloads.values()} == {True, False}
    assert len({p["width"] for p in payloads.values()}) >= 2


@pytest.mark.parametrize(
    ("where", "holds"),
    [
        (["format=PNG"], lambda p: p["format"] == "PNG"),
        (["format!=PNG"], lambda p: p["format"] != "PNG"),
        (["has_text=true"], lambda p: p["has_text"] is True),
        (["has_text=true", "format=JPEG"], lambda p: p["has_text"] and p["format"] == "JPEG"),
        (["format in [PNG, GIF]"], lambda p: p["format"] in ("PNG", "GIF")),
    ],
)
def test_where_restricts_a_browse_exactly(http, payloads, where, holds):
    expected = {i for i, p in payloads.items() if holds(p)}
    assert expected, "the filter should match something in the sample"
    got = browse_all(http, tuple(where))
    assert len(got) == len(set(got)) and set(got) == expected
    assert search(http, where=where, k=1)["total"] == len(expected)


@pytest.mark.parametrize("sort", ["ingested_at", "width"])
def test_a_filtered_browse_pages_without_overlap(http, payloads, sort):
    expected = {i for i, p in payloads.items() if p["has_text"]}
    got = browse_all(http, ("has_text=true",), k=3, sort=sort)
    assert len(got) == len(set(got)) and set(got) == expected


def test_width_filter_restricts_a_search_exactly(http, payloads):
    widths = sorted(p["width"] for p in payloads.values())
    cut = widths[len(widths) // 2]
    expected = {i for i, p in payloads.items() if p["width"] >= cut}
    data = search(http, q="sale", mode="hybrid", where=[f"width>={cut}"], k=100)
    assert data["total"] == len(expected)
    assert data["hits"] and {h["id"] for h in data["hits"]} <= expected
    for hit in data["hits"]:
        assert http.get(f"/api/images/{hit['id']}").json()["width"] >= cut
    keyword = search(http, q="sale", mode="keyword", where=["format=JPEG"], k=100)
    assert all(payloads[h["id"]]["format"] == "JPEG" for h in keyword["hits"])


@pytest.mark.parametrize(
    ("yes", "no"),
    [("format=PNG", "format!=PNG"), ("has_text=true", "has_text=false"), ("width>=600", "width<600")],
)
def test_a_filter_and_its_negation_partition_the_collection(http, payloads, yes, no):
    count = http.get("/health").json()["images"]
    a, b = search(http, where=[yes], k=1)["total"], search(http, where=[no], k=1)["total"]
    assert a + b == count == len(payloads)
    assert set(browse_all(http, (yes,))).isdisjoint(browse_all(http, (no,)))


@pytest.mark.parametrize("where", [(), ("has_text=true",), ("format=PNG",)])
@pytest.mark.parametrize("field", ["format", "folder", "width"])
def test_facet_counts_equal_the_payloads(http, payloads, field, where):
    ids = browse_all(http, where)
    expected = Counter(payloads[i][field] for i in ids)
    answer = http.get("/api/facets", params={"field": field, "where": list(where), "limit": 200})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["field"] == field
    assert {v["value"]: v["count"] for v in data["values"]} == dict(expected)
    counts = [v["count"] for v in data["values"]]
    assert counts == sorted(counts, reverse=True)  # most first


def test_browse_pages_without_overlap_in_ingested_order(http, payloads):
    ids = browse_all(http, k=4)
    assert len(ids) == len(set(ids)) == len(payloads)
    stamps = [payloads[i]["ingested_at"] for i in ids]
    assert stamps == sorted(stamps, reverse=True)  # newest first by default
    first = search(http, k=4)
    assert first["mode"] == "browse" and first["channels"] == [] and first["total"] == len(payloads)
    assert all(h["score"] == 0 for h in first["hits"])


@pytest.mark.parametrize(("order", "descending"), [("desc", True), ("asc", False)])
def test_browse_sorted_by_width_pages_in_order(http, payloads, order, descending):
    seen: list[str] = []
    pages = []
    while True:
        hits = search(http, sort="width", order=order, k=5, offset=len(seen))["hits"]
        assert [h["rank"] for h in hits] == list(range(len(seen) + 1, len(seen) + len(hits) + 1))
        pages.append([h["id"] for h in hits])
        seen += pages[-1]
        if len(hits) < 5:
            break
    assert len(pages) >= 3 and len(seen) == len(set(seen)) == len(payloads)  # pages never overlap
    widths = [payloads[i]["width"] for i in seen]
    assert widths == sorted(widths, reverse=descending)
    assert [h["width"] for h in search(http, sort="width", order=order, k=100)["hits"]] == widths


@pytest.mark.parametrize(
    "body",
    [
        {"q": "", "where": ["format=PNG"], "k": 5, "offset": 2, "sort": "width", "order": "asc"},
        {"q": "burger", "mode": "keyword", "where": ["has_text=true"], "k": 3},
        {"q": "car sale", "where": ["format!=GIF", "width>=10"], "k": 4, "offset": 1},
    ],
)
def test_post_with_a_json_body_equals_the_get(http, body):
    posted = http.post("/api/search", json=body)
    assert posted.status_code == 200, posted.text
    got, first = search(http, **body), posted.json()
    got.pop("timings_ms"), first.pop("timings_ms")
    assert first == got and first["hits"]


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("/api/search", {"where": "colour=red"}, "unknown field 'colour'"),
        ("/api/search", {"q": "car", "where": "colour=red"}, "unknown field 'colour'"),
        ("/api/search", {"where": "width=wide"}, "not a valid integer value for field width"),
        ("/api/search", {"where": "has_text=maybe"}, "not a valid bool value"),
        ("/api/search", {"where": "format>=PNG"}, "needs a number or date field"),
        ("/api/search", {"where": "format in PNG"}, "a list is written [a, b, c]"),
        ("/api/search", {"where": "width"}, "bad filter 'width'"),
        ("/api/search", {"sort": "format"}, "cannot sort by 'format'"),
        ("/api/search", {"sort": "nonesuch"}, "cannot sort by 'nonesuch'"),
        ("/api/facets", {"field": "has_text"}, "cannot count values of 'has_text'"),
        ("/api/facets", {"field": "ocr_confidence"}, "cannot count values of 'ocr_confidence'"),
        ("/api/facets", {"field": "nonesuch"}, "cannot count values of 'nonesuch'"),
        ("/api/facets", {"field": "format", "where": "colour=red"}, "unknown field 'colour'"),
    ],
)
def test_bad_filters_sorts_and_facets_are_422_with_the_reason(http, path, params, reason):
    answer = http.get(path, params=params)
    assert answer.status_code == 422, answer.text
    assert reason in str(answer.json()["detail"])


def test_bad_filters_in_a_json_body_are_422(http):
    answer = http.post("/api/search", json={"q": "", "where": ["width<=abc"]})
    assert answer.status_code == 422 and "not a valid integer value" in answer.json()["detail"]
    answer = http.post("/api/search", json={"q": "", "sort": "folder"})
    assert answer.status_code == 422 and "cannot sort by 'folder'" in answer.json()["detail"]


def test_more_than_20_clauses_is_422(http):
    twenty = ["width>=1"] * 20
    assert search(http, where=twenty, k=1)["total"] == http.get("/health").json()["images"]
    for answer in (
        http.get("/api/search", params={"where": [*twenty, "width>=1"]}),
        http.post("/api/search", json={"q": "", "where": [*twenty, "width>=1"]}),
        http.get("/api/facets", params={"field": "format", "where": [*twenty, "width>=1"]}),
    ):
        assert answer.status_code == 422, answer.text
        assert "20" in str(answer.json()["detail"])
