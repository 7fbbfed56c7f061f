"""The filter language and its translation by both store backends (Qdrant Edge and qdrant-client's
local mode): counts, filtered fused search, facets and ordered browsing, checked against the same
predicates evaluated in Python."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from qdrant_client import QdrantClient

from engine.errors import SearchError
from engine.filters import BUILTIN_FIELDS, Clause, parse_where, split_query
from engine.store import ChannelQuery, ClientStore, EdgeStore, PointData, point_id

FIELDS = {**BUILTIN_FIELDS, "brand": "keyword", "topics": "keywords", "year": "integer", "date": "datetime",
          "price": "float"}  # fmt: skip
BRANDS = ["Audi", "BMW", "Kia"]


def make_points(n: int = 60) -> list[PointData]:
    rng = random.Random(7)
    points = []
    for i in range(n):
        vectors = {"image": [rng.random() for _ in range(4)]}
        if i % 3:
            vectors["text"] = [rng.random() for _ in range(4)]
        payload = {
            "brand": rng.choice(BRANDS),
            "topics": rng.sample(["cars", "travel", "food"], 2),
            "year": 2000 + i % 10,
            "date": f"2014-{1 + i % 9:02d}-01T00:00:00+00:00",
            "has_text": bool(i % 3),
            "width": 100 + i,
            "ingested_at": f"2026-01-01T00:{i:02d}:00+00:00",
            "price": 0.5 + (i % 4) * 0.25,
        }
        points.append(PointData(point_id(str(i)), vectors, payload))
    return points


POINTS = make_points()


@pytest.fixture(scope="module", params=["edge", "client"])
def store(request, tmp_path_factory):
    if request.param == "edge":
        s = EdgeStore(tmp_path_factory.mktemp("filters"), "ads")
    else:
        s = ClientStore(QdrantClient(":memory:"), "ads")
    s.ensure_collection({"image": 4, "text": 4})
    s.upsert(POINTS)
    s.ensure_indexes(FIELDS)
    yield s
    s.close()


def date(p) -> datetime:
    return datetime.fromisoformat(p["date"])


CASES = {
    "brand=Audi": lambda p: p["brand"] == "Audi",
    "brand!=Audi": lambda p: p["brand"] != "Audi",
    "topics in [food, nothing]": lambda p: "food" in p["topics"],
    "topics not in [travel]": lambda p: "travel" not in p["topics"],
    "year>=2005": lambda p: p["year"] >= 2005,
    "year<2003": lambda p: p["year"] < 2003,
    "date>=2014-05-01": lambda p: date(p) >= datetime(2014, 5, 1, tzinfo=UTC),
    "has_text=true": lambda p: p["has_text"],
    "has_text=false": lambda p: not p["has_text"],
    "has_text!=true": lambda p: not p["has_text"],
    "width<130": lambda p: p["width"] < 130,
    "price=0.75": lambda p: p["price"] == 0.75,  # a float's exact value: the closed range [0.75, 0.75]
    "price = 1": lambda p: p["price"] == 1.0,
    "price in [1.25]": lambda p: p["price"] == 1.25,
    "price>=1": lambda p: p["price"] >= 1,
    "price!=0.75": lambda p: p["price"] != 0.75,
    "price not in [0.75, 1]": lambda p: p["price"] not in (0.75, 1.0),
    "price in [0.75, 1.25]": lambda p: p["price"] in (0.75, 1.25),
    "date in [2014-05-01, 2013-01-01]": lambda p: (
        date(p) in (datetime(2014, 5, 1, tzinfo=UTC), datetime(2013, 1, 1, tzinfo=UTC))
    ),
}


@pytest.mark.parametrize("text", list(CASES))
def test_count_and_facets_match_the_predicate(store, text):
    where = parse_where([text], FIELDS)
    expected = [p.payload for p in POINTS if CASES[text](p.payload)]
    assert 0 < len(expected) < len(POINTS)  # every case really filters
    assert store.count(where=where) == len(expected)
    brands = dict(store.facet("brand", where))
    assert brands == {
        b: sum(p["brand"] == b for p in expected) for b in BRANDS if any(p["brand"] == b for p in expected)
    }


def test_clauses_combine_with_and(store):
    where = parse_where(["year>=2005", "brand in [BMW, Kia]", "has_text=true"], FIELDS)
    expected = [
        p
        for p in POINTS
        if p.payload["year"] >= 2005 and p.payload["brand"] != "Audi" and p.payload["has_text"]
    ]
    assert store.count(where=where) == len(expected)


def test_filtered_fused_search_returns_only_matching_points_and_all_of_them(store):
    where = parse_where(["brand=Kia"], FIELDS)
    kia = {p.id for p in POINTS if p.payload["brand"] == "Kia"}
    queries = [ChannelQuery("image", [0.5, 0.5, 0.5, 0.5]), ChannelQuery("text", [0.1, 0.9, 0.2, 0.3])]
    result = store.search(queries, [1.0, 1.0], limit=100, offset=0, prefetch_limit=100, rrf_k=3, where=where)
    assert {h.id for h in result.fused} == kia  # exact: not a post-filtered top-k
    assert all(h.id in kia for hits in result.per_channel.values() for h in hits)


def test_browse_orders_by_an_indexed_field_and_pages(store):
    where = parse_where(["brand=BMW"], FIELDS)
    bmw = sorted(
        (p for p in POINTS if p.payload["brand"] == "BMW"),
        key=lambda p: p.payload["ingested_at"],
        reverse=True,
    )
    first = store.browse(where, "ingested_at", True, 5, 0)
    second = store.browse(where, "ingested_at", True, 5, 5)
    assert [i for i, _ in first + second] == [p.id for p in bmw[:10]]
    assert [i for i, _ in store.browse((), "year", False, 3, 0)] and store.browse((), "year", False, 3, 0)[0][
        1
    ]["year"] == 2000


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("colour=red", "unknown field 'colour'"),
        ("year>=abc", "not a valid integer"),
        ("year>=1e400", "not a valid integer"),
        ("width>=nan", "not a valid integer"),
        ("brand>=Audi", "needs a number or date field"),
        ("date>=yesterday", "not a valid datetime"),
        ("topics in cars", "a list is written"),
        ("topics in []", "give 1 to"),
        ("has_text=maybe", "not a valid bool"),
        ("just words", "bad filter"),
        ("price=nan", "not a valid float"),
        ("year=9223372036854775808", "integers are stored in 64 bits"),
        ("year>=-9223372036854775809", "integers are stored in 64 bits"),
        ("year in [1, 99999999999999999999]", "integers are stored in 64 bits"),
        ("width<1e19", "not a valid integer"),
    ],
)
def test_bad_filters_say_why(text, reason):
    with pytest.raises(SearchError, match=reason):
        parse_where([text], FIELDS)


def test_values_are_typed_and_lists_deduplicated():
    assert parse_where(["year = 2004"], FIELDS) == [Clause("year", "=", 2004)]
    assert parse_where(['brand="Audi A7"'], FIELDS) == [Clause("brand", "=", "Audi A7")]
    assert parse_where(["topics in [cars, cars, 'food']"], FIELDS) == [
        Clause("topics", "in", ("cars", "food"))
    ]
    assert parse_where(["date<2014-02-01"], FIELDS)[0].value == datetime(2014, 2, 1, tzinfo=UTC)
    assert parse_where(["has_text=TRUE"], FIELDS) == [Clause("has_text", "=", True)]


def test_float_values_are_typed_and_integers_are_64_bit():
    assert parse_where(["price=0.5"], FIELDS) == [Clause("price", "=", 0.5)]
    assert parse_where(["price in [0.5, .5]"], FIELDS) == [Clause("price", "in", (0.5,))]
    assert parse_where(["ocr_confidence=80"], FIELDS) == [Clause("ocr_confidence", "=", 80.0)]
    assert parse_where(["price>0.5"], FIELDS) == [Clause("price", ">", 0.5)]
    assert parse_where(["year=9223372036854775807", "year>=-9223372036854775808"], FIELDS) == [
        Clause("year", "=", 2**63 - 1), Clause("year", ">=", -(2**63)),
    ]  # fmt: skip


def test_a_query_splits_into_embedded_text_and_exact_wording():
    parts = split_query('"Just  do it" running shoes -kids -Kids "" -')
    assert parts.text == "Just do it running shoes"
    assert parts.clauses == (
        Clause("ocr_text", "phrase", "Just do it"),
        Clause("ocr_text", "without", "kids"),
    )
    assert split_query("plain words").clauses == () and split_query("well-known").text == "well-known"


@pytest.mark.parametrize("backend", ["edge", "client"])
def test_phrases_need_the_words_in_order_and_minus_words_exclude(backend, tmp_path):
    texts = ["Just do it. Nike", "just DO something else", "It do just", "Impossible is nothing"]
    store = EdgeStore(tmp_path, "ads") if backend == "edge" else ClientStore(QdrantClient(":memory:"), "ads")
    store.ensure_collection({"image": 2, "text": 2})
    points = [
        PointData(point_id(t), {"image": [1.0, i / 10]}, {"ocr_text": t, "n": i}) for i, t in enumerate(texts)
    ]
    store.upsert(points)
    store.ensure_indexes({"ocr_text": "text", "n": "integer"})

    def matching(query: str) -> set[str]:
        return {p["ocr_text"] for _, p in store.browse(split_query(query).clauses, "n", False, 10, 0)}

    assert matching('"just do it"') == {"Just do it. Nike"}  # case-insensitive, in order only
    assert matching('"do just"') == {"It do just"}
    assert matching("-just") == {"Impossible is nothing"}
    assert matching('"is nothing" -impossible') == set()
    store.close()
