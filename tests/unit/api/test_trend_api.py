"""GET /api/trend over real HTTP (uvicorn on a localhost port) against the synthetic sample: counts
checked against the images' own payloads, every bad parameter a 422 with the reason."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest

from engine.analysis import MAX_BUCKETS, MAX_SERIES


@pytest.fixture(scope="module")
def http(api_server):
    with httpx.Client(base_url=api_server, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def payloads(http) -> dict[str, dict]:
    """Every image's payload, found by browsing without filters page by page."""
    ids: list[str] = []
    while True:
        hits = http.get("/api/search", params={"k": 100, "offset": len(ids)}).json()["hits"]
        ids += [h["id"] for h in hits]
        if len(hits) < 100:
            break
    return {i: http.get(f"/api/images/{i}").json() for i in ids}


def trend(http, **params) -> dict:
    answer = http.get("/api/trend", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def day_of(payload: dict, field: str) -> str:
    return datetime.fromisoformat(payload[field]).astimezone(UTC).strftime("%Y-%m-%d")


def test_series_count_exactly_with_shares(http, payloads):
    series = ["PNG=where: format=PNG", "JPEG=where: format=JPEG"]
    answer = trend(http, field="file_date", by="day", series=series)
    assert set(answer) == {"field", "by", "from", "to", "series", "buckets", "notes"}
    expected = {
        label: Counter(day_of(p, "file_date") for p in payloads.values() if p["format"] == label)
        for label in ("PNG", "JPEG")
    }
    assert {s["label"]: s["kind"] for s in answer["series"]} == {"PNG": "exact", "JPEG": "exact"}
    for bucket in answer["buckets"]:
        counts = {label: expected[label].get(bucket["label"], 0) for label in expected}
        assert bucket["counts"] == counts
        total = sum(counts.values())
        assert bucket["shares"] == {k: round(n / total, 4) if total else None for k, n in counts.items()}
    assert {s["label"]: s["total"] for s in answer["series"]} == {
        label: sum(found.values()) for label, found in expected.items()
    }  # fmt: skip
    assert all(s["total"] > 0 for s in answer["series"])  # the sample has both


def test_a_where_clause_narrows_every_series(http, payloads):
    answer = trend(http, field="ingested_at", by="year", where=["width>=400"])
    assert answer["series"][0]["label"] == "all"
    assert answer["series"][0]["total"] == sum(1 for p in payloads.values() if p["width"] >= 400)


def test_a_ranked_query_is_labelled_with_its_top(http):
    answer = trend(http, q="sale", top=5, by="year", field="ingested_at")
    series = answer["series"][0]
    assert series["kind"] == "ranked" and series["top"] == 5 and series["total"] == 5
    assert any("top 5" in note for note in answer["notes"])


def test_an_empty_span_has_zero_counts_and_no_shares(http):
    answer = trend(http, by="month", **{"from": "1990-01-01", "to": "1990-03-31"})
    assert [b["label"] for b in answer["buckets"]] == ["1990-01", "1990-02", "1990-03"]
    assert all(b["counts"] == {"all": 0} and b["shares"] == {"all": None} for b in answer["buckets"])


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"by": "decade"}, "by"),
        ({"field": "format"}, "not a date-time field"),
        ({"field": ""}, "field"),
        ({"top": 0}, "top"),
        ({"top": 5000}, "top"),
        ({"series": [f"S{i}=x" for i in range(MAX_SERIES + 1)]}, "series"),
        ({"series": ["no label"]}, "write LABEL=QUERY"),
        ({"series": ["A=x", "A=where: format=PNG"]}, "given twice"),
        ({"series": ["A=where: nope=1"]}, "unknown field 'nope'"),
        ({"q": "sale", "series": ["A=x"]}, "not both"),
        ({"where": ["width>wide"]}, "not a valid integer"),
        ({"from": "not a date"}, "not a valid datetime value"),
        ({"from": "2024-01-01", "to": "2020-01-01"}, "is after to"),
        ({"from": "x" * 100}, "from"),
        ({"by": "day", "from": "2000-01-01", "to": "2024-01-01"}, f"more than {MAX_BUCKETS} day periods"),
        ({"q": "x" * 5000}, "q"),
    ],
)
def test_bad_parameters_are_422_with_the_reason(http, params, reason):
    answer = http.get("/api/trend", params=params)
    assert answer.status_code == 422, answer.text
    assert reason in answer.text


def test_the_search_page_charts_the_query_with_a_vendored_library(http):
    page = http.get("/", params={"q": 'sale "<b>x</b>"', "where": "width>=10"})
    assert page.status_code == 200
    assert 'id="trend"' in page.text and 'data-q="sale &#34;&lt;b&gt;x&lt;/b&gt;&#34;"' in page.text
    assert "width\\u003e=10" in page.text or "width&gt;=10" in page.text
    assert "cdn" not in page.text.lower()  # every script is served from /static
    for name in ("uplot.min.js", "uplot.min.css", "trend.js", "UPLOT-LICENSE.txt"):
        assert http.get(f"/static/{name}").status_code == 200
    assert 'id="trend"' not in http.get("/").text  # nothing to chart without a query or a filter
