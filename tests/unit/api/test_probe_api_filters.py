"""Filter values that once gave 500 (issue 21, item 6): exact values of float fields, integers beyond
64 bits; over real HTTP (the JSON API, the search page, facets) and in the CLI, against a small
collection with metadata fields of every type."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import httpx
import pytest
from helpers import served_client

from api import create_app

INT64_MAX = 2**63 - 1
# one row per image: rating (float), budget (integer), launched (datetime), brand (keyword),
# topics (keywords), psa (bool)
ROWS = [
    ("4.5", "1000", "2014-03-01", "Audi", "cars;travel", "yes"),
    ("5", str(INT64_MAX), "2015-01-01", "BMW", "cars", "no"),
    ("3.25", "-5", "2016-06-30", "Kia", "food", "no"),
]
SCHEMA = {"rating": "float", "budget": "integer", "launched": "datetime", "brand": "keyword",
          "topics": "keywords", "psa": "bool"}  # fmt: skip
ERROR_HTML = '<p class="error" role="alert">'  # where the search page says what was wrong
TOO_BIG = str(2**63)  # 9223372036854775808
TOO_SMALL = str(-(2**63) - 1)


@pytest.fixture(scope="module")
def meta_db(tmp_path_factory, settings, encoders, sample_dir, truth):
    """Three sample ads with metadata ingested into a folder of their own (the library closed
    again: the CLI tests open a copy of it). (db, {file name: row})."""
    from engine.ingest.metadata import load_metadata
    from engine.library import Library

    folder = tmp_path_factory.mktemp("probe-filter-ads")
    ads = [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]][:3]
    names = [ad["file"].rsplit("/", 1)[-1] for ad in ads]
    for ad in ads:
        shutil.copy(sample_dir / ad["file"], folder)
    meta = folder.parent / "probe-meta.csv"
    header = "path,rating,budget,launched,brand,topics,psa\n"
    rows = "".join(f"{name},{','.join(row)}\n" for name, row in zip(names, ROWS, strict=True))
    meta.write_text(header + rows)
    db = tmp_path_factory.mktemp("probe-filter-db")
    with Library(settings.with_overrides(db=db), encoders=encoders) as library:
        report = library.ingest([folder], metadata=load_metadata(meta, SCHEMA))
        assert report.ingested == 3 and not report.failed and not report.metadata_skipped
        assert {k: library.fields()[k] for k in SCHEMA} == {**SCHEMA, "psa": "keyword"}
    return db, dict(zip(names, ROWS, strict=True))


@pytest.fixture(scope="module")
def cli_env(meta_db, tmp_path_factory, tiny_clip_dir):
    """ADSEARCH_* for the CLI over a copy of the collection (the server below holds the original)."""
    db = tmp_path_factory.mktemp("probe-filter-cli") / "db"
    shutil.copytree(meta_db[0], db, ignore=shutil.ignore_patterns(".lock"))
    return {"ADSEARCH_DB": str(db), "ADSEARCH_CLIP_MODEL": str(tiny_clip_dir)}


@pytest.fixture(scope="module")
def http(meta_db, cli_env, settings, encoders):
    from engine.library import Library

    library = Library(settings.with_overrides(db=meta_db[0]), encoders=encoders)
    with library, served_client(create_app(library), lifespan="off") as client:
        yield client


def names(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 200, answer.text
    return {hit["paths"][0].rsplit("/", 1)[-1] for hit in answer.json()["hits"]}


def browse(http, *where: str, method: str = "GET") -> httpx.Response:
    if method == "POST":
        return http.post("/api/search", json={"where": list(where), "k": 100})
    return http.get("/api/search", params={"where": list(where), "k": 100})


def file_with(meta_db, column: int, value: str) -> set[str]:
    return {name for name, row in meta_db[1].items() if row[column] == value}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("where", "column", "value"),
    [
        ("rating=4.5", 0, "4.5"),
        ("rating = 5", 0, "5"),
        ("rating=5.0", 0, "5"),
        ("rating=3.25", 0, "3.25"),
        ("rating in [4.5]", 0, "4.5"),
        ("rating in [3.25, 3.25]", 0, "3.25"),
        (f"budget={INT64_MAX}", 1, str(INT64_MAX)),
        ("budget=-5", 1, "-5"),
    ],
)
def test_exact_values_of_float_and_64_bit_fields_match(http, meta_db, method, where, column, value):
    expected = file_with(meta_db, column, value)
    assert len(expected) == 1
    assert names(browse(http, where, method=method)) == expected
    facets = http.get("/api/facets", params={"field": "brand", "where": where})
    assert facets.status_code == 200, facets.text
    assert sum(v["count"] for v in facets.json()["values"]) == 1
    page = http.get("/", params={"where": where})
    assert page.status_code == 200 and ERROR_HTML not in page.text
    assert page.text.count('<li class="card"') == 1


def test_rating_equality_is_none_of_the_other_values(http):
    assert names(browse(http, "rating=4.6")) == set()
    assert names(browse(http, "rating=4.5", "rating>=4.5")) == names(browse(http, "rating=4.5"))


def test_ocr_confidence_equals_an_images_own_value(http):
    """The built-in float field: its exact stored value finds that image; 80 (the issue's example)
    is a 200 whatever the images hold."""
    hits = browse(http).json()["hits"]
    confidence = {hit["id"]: http.get(f"/api/images/{hit['id']}").json()["ocr_confidence"] for hit in hits}
    some_id, value = next(iter(confidence.items()))
    same = {i for i, c in confidence.items() if c == value}
    assert {h["id"] for h in browse(http, f"ocr_confidence={value!r}").json()["hits"]} == same
    for where in ("ocr_confidence=80", "ocr_confidence=80.0", "ocr_confidence in [80]"):
        answer = browse(http, where)
        assert answer.status_code == 200, answer.text
        assert {h["id"] for h in answer.json()["hits"]} == {i for i, c in confidence.items() if c == 80}
    assert http.get("/", params={"where": "ocr_confidence=80"}).status_code == 200


def test_float_negations_and_several_values_match_exactly(http, meta_db):
    """The issue's 500s: `rating!=4.5`, `rating in [4.5,5]` (float fields: exact values as ranges)."""
    everything = names(browse(http))
    four_and_half, five = file_with(meta_db, 0, "4.5"), file_with(meta_db, 0, "5")
    assert names(browse(http, "rating!=4.5")) == everything - four_and_half
    assert names(browse(http, "rating in [4.5,5]", method="POST")) == four_and_half | five
    assert names(browse(http, "rating not in [4.5, 5]")) == everything - four_and_half - five
    assert browse(http, "ocr_confidence!=80").status_code == 200


BAD = [
    (f"budget={TOO_BIG}", "stored in 64 bits"),
    (f"budget>={TOO_SMALL}", "stored in 64 bits"),
    (f"budget in [1, {TOO_BIG}]", "stored in 64 bits"),
    (f"budget not in [{TOO_BIG}]", "stored in 64 bits"),
    (f"width<{TOO_BIG}", "stored in 64 bits"),
    ("budget=1e400", "not a valid integer"),
    ("rating>=1e400", "not a valid float"),
    ("rating=nan", "not a valid float"),
]


@pytest.mark.parametrize(("where", "reason"), BAD)
def test_filters_the_store_cannot_hold_are_422_with_the_reason(http, where, reason):
    for answer in (
        browse(http, where),
        browse(http, where, method="POST"),
        http.get("/api/facets", params={"field": "brand", "where": where}),
        http.get("/api/search", params={"q": "sale", "where": where}),
    ):
        assert answer.status_code == 422, (where, answer.status_code, answer.text[:300])
        assert reason in answer.json()["detail"], answer.json()
    page = http.get("/", params={"where": where})
    assert page.status_code == 200  # the page shows the reason where the results would be
    assert ERROR_HTML in page.text and reason.replace("'", "&#39;") in page.text


# a value of every kind on a field of every type: an answer (200) or the reason (422), never a 500
FIELDS = ["rating", "budget", "launched", "brand", "topics", "psa", "width", "ocr_confidence", "has_text",
          "file_date", "format"]  # fmt: skip
VALUES = ["4.5", "-0.0", "1e308", "1e-320", TOO_BIG, TOO_SMALL, "99999999999999999999999999", "nan", "inf",
          "2014-03-01", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00", "true", "'x'",
          "[1,2]"]  # fmt: skip


@pytest.mark.parametrize("field", FIELDS)
def test_any_value_on_any_field_is_an_answer_or_a_422(http, field):
    for value in VALUES:
        for op in ("=", "!=", ">=", "<", " in ", " not in "):
            text = f"{field}{op}[{value}]" if "in" in op else f"{field}{op}{value}"
            answer = browse(http, text)
            assert answer.status_code in (200, 422), (text, answer.status_code, answer.text[:300])
            facets = http.get("/api/facets", params={"field": "brand", "where": text})
            assert facets.status_code in (200, 422), (text, facets.status_code, facets.text[:300])


# ---------------------------------------------------------------------- the CLI


def adsearch(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
    )  # fmt: skip


def test_the_cli_matches_float_values_and_refuses_the_rest_in_one_line(cli_env, meta_db):
    found = adsearch(cli_env, "search", "--where", "rating=4.5", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert {h["paths"][0].rsplit("/", 1)[-1] for h in hits} == file_with(meta_db, 0, "4.5")
    counted = adsearch(cli_env, "facets", "brand", "--where", "rating=5", "--json")
    assert counted.returncode == 0, counted.stderr
    assert [v["count"] for v in json.loads(counted.stdout)["values"]] == [1]
    refused = adsearch(cli_env, "search", "--where", f"budget={TOO_BIG}")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]  # one line
    assert refused.stderr.startswith("adsearch: error: ") and "stored in 64 bits" in refused.stderr
    for where, reason in BAD[:5]:
        refused = adsearch(cli_env, "facets", "brand", "--where", where)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and reason in refused.stderr
