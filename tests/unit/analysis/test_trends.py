"""Trends (engine.analysis + `adsearch trend`) on the synthetic sample ingested with its campaign
metadata: every count is checked against the metadata file read here, or against the dates of the
images a search or a browse returns, bucketed by this file's own calendar arithmetic."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date

import pytest
from helpers import adsearch

from engine.analysis import MAX_BUCKETS, MAX_SERIES, TrendRequest
from engine.errors import SearchError
from engine.ingest.metadata import load_metadata
from engine.library import Library
from engine.search.request import SearchRequest

FIELD = "campaign_start"


@pytest.fixture(scope="module")
def trend_settings(settings, encoders, sample_dir, tmp_path_factory):
    """Settings of a store holding the sample with its metadata (closed again: the CLI opens it too)."""
    own = settings.with_overrides(db=tmp_path_factory.mktemp("trend-db"))
    table = load_metadata(sample_dir / "metadata.csv", sample_dir / "metadata.schema.json")
    with Library(own, encoders=encoders) as library:
        report = library.ingest([sample_dir / "images"], metadata=table)
    assert not report.failed and not report.metadata_skipped
    return own


@pytest.fixture
def library(trend_settings, encoders):
    with Library(trend_settings, encoders=encoders) as opened:
        yield opened


@pytest.fixture(scope="module")
def rows(sample_dir) -> list[dict]:
    """The metadata file's rows, each with its campaign date (a date) and category."""
    with open(sample_dir / "metadata.csv", newline="") as handle:
        found = list(csv.DictReader(handle))
    for row in found:
        row["day"] = date.fromisoformat(row[FIELD][:10])
    return found


def month_of(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


def months_between(first: date, last: date) -> list[str]:
    out, (year, month) = [], (first.year, first.month)
    while (year, month) <= (last.year, last.month):
        out.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def counts_of(answer: dict, label: str) -> dict[str, int]:
    return {b["label"]: b["counts"][label] for b in answer["buckets"]}


def dates_of(library: Library, ids: list[str]) -> list[date]:
    payloads = library.store.retrieve(ids)
    return [date.fromisoformat(p[FIELD][:10]) for p in payloads.values() if FIELD in p]


# ---------------------------------------------------------------------- exact counts


def test_monthly_counts_are_the_metadata_rows_per_month(library, rows):
    answer = library.trend(TrendRequest(field=FIELD, by="month"))
    days = [r["day"] for r in rows]
    expected = Counter(month_of(d) for d in days)
    labels = [b["label"] for b in answer["buckets"]]
    assert labels == months_between(min(days), max(days))  # every month in between, empty ones too
    assert counts_of(answer, "all") == {m: expected.get(m, 0) for m in labels}
    assert answer["series"][0] | {"where": []} == {
        "label": "all", "kind": "exact", "query": "", "where": [], "total": len(rows)
    }  # fmt: skip
    assert answer["field"] == FIELD and answer["by"] == "month"
    assert answer["from"].startswith(f"{min(days):%Y-%m}-01T00:00:00")


def test_iso_weeks_start_on_monday(library, rows):
    answer = library.trend(TrendRequest(field=FIELD, by="week", start="2023-01-01", end="2023-06-30"))
    expected = Counter(
        "{}-W{:02d}".format(*r["day"].isocalendar()[:2]) for r in rows if date(2023, 1, 1) <= r["day"]
    )
    for bucket in answer["buckets"]:
        start = date.fromisoformat(bucket["start"][:10])
        assert start.weekday() == 0 and (date.fromisoformat(bucket["end"][:10]) - start).days == 7
        assert bucket["counts"]["all"] == expected.get(bucket["label"], 0)
    # 2023-01-01 is a Sunday: its ISO week (2022-W52) is the first period
    assert answer["buckets"][0]["label"] == "2022-W52" and answer["buckets"][-1]["label"] == "2023-W26"


def test_series_of_filters_count_exactly_with_their_share_of_each_period(library, rows):
    series = ("Food=where: category=food", "Cars=where: category=cars", "Big=where: budget>=40000")
    answer = library.trend(TrendRequest(field=FIELD, by="year", series=series, where=("rating>=3",)))
    holds = {
        "Food": lambda r: r["category"] == "food",
        "Cars": lambda r: r["category"] == "cars",
        "Big": lambda r: int(r["budget"]) >= 40000,
    }
    seen = 0
    for bucket in answer["buckets"]:
        year = int(bucket["label"])
        these = [r for r in rows if r["day"].year == year and float(r["rating"]) >= 3]
        expected = {k: sum(1 for r in these if f(r)) for k, f in holds.items()}
        assert bucket["counts"] == expected
        total = sum(expected.values())
        assert bucket["shares"] == {k: round(n / total, 4) if total else None for k, n in expected.items()}
        seen += total
    assert seen > 0 and [s["kind"] for s in answer["series"]] == ["exact"] * 3
    assert answer["series"][0]["where"] == ["rating>=3", "category=food"]


def test_a_phrase_counts_exactly_the_ads_a_browse_finds(library):
    phrase = '"burger"'
    browsed = library.search(SearchRequest(q=phrase).deeper(100))  # filtered: every match is ranked
    assert browsed.hits and len(browsed.hits) == browsed.total, "the sample has a burger ad or two"
    answer = library.trend(TrendRequest(q=phrase, field=FIELD, by="month"))
    assert answer["series"][0]["kind"] == "exact"
    found = Counter(month_of(d) for d in dates_of(library, [h.id for h in browsed.hits]))
    assert {k: n for k, n in counts_of(answer, phrase).items() if n} == dict(found)


def test_from_and_to_pick_whole_periods(library, rows):
    answer = library.trend(TrendRequest(field=FIELD, by="month", start="2023-03-15", end="2023-06-01"))
    assert [b["label"] for b in answer["buckets"]] == ["2023-03", "2023-04", "2023-05", "2023-06"]
    expected = Counter(month_of(r["day"]) for r in rows)
    assert counts_of(answer, "all") == {
        m: expected.get(m, 0) for m in ("2023-03", "2023-04", "2023-05", "2023-06")
    }
    empty = library.trend(TrendRequest(field=FIELD, by="year", start="1990-01-01", end="1991-12-31"))
    assert [b["counts"]["all"] for b in empty["buckets"]] == [0, 0]
    assert [b["shares"]["all"] for b in empty["buckets"]] == [None, None]


def test_the_default_field_is_file_date_without_a_date_field(library):
    answer = library.trend(TrendRequest(by="year"))
    assert answer["field"] == "file_date" and answer["series"][0]["total"] == library.store.count()


# ---------------------------------------------------------------------- ranked


def test_a_ranked_query_counts_the_dates_of_its_top_hits(library):
    answer = library.trend(TrendRequest(q="burger deal", field=FIELD, by="month", top=5))
    series = answer["series"][0]
    assert series["kind"] == "ranked" and series["top"] == 5 and series["hits"] == 5
    assert any("top 5" in note for note in answer["notes"])
    hits = library.search(SearchRequest(q="burger deal").deeper(5), snippets=False).hits
    found = Counter(month_of(d) for d in dates_of(library, [h.id for h in hits]))
    assert {k: n for k, n in counts_of(answer, "burger deal").items() if n} == dict(found)
    assert series["total"] == sum(found.values()) == 5 - series["undated"]


def test_ranked_and_exact_series_side_by_side(library, rows):
    series = ("Burger=burger", "Food=where: category=food")
    answer = library.trend(TrendRequest(field=FIELD, by="year", series=series, top=3))
    kinds = {s["label"]: s["kind"] for s in answer["series"]}
    assert kinds == {"Burger": "ranked", "Food": "exact"}
    assert sum(counts_of(answer, "Burger").values()) == 3
    assert sum(counts_of(answer, "Food").values()) == sum(1 for r in rows if r["category"] == "food")


# ---------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (TrendRequest(field="brand"), "not a date-time field; date-time fields: campaign_start"),
        (TrendRequest(field="nope"), "cannot count by 'nope'"),
        (TrendRequest(by="decade"), "bad period 'decade'"),
        (TrendRequest(field=FIELD, by="day"), f"more than {MAX_BUCKETS} day periods"),
        (TrendRequest(series=("no label here",)), "write LABEL=QUERY"),
        (TrendRequest(series=("=audi",)), "write LABEL=QUERY"),
        (TrendRequest(series=("A=",)), "give a query and/or"),
        (TrendRequest(series=("A=x", "A=y")), "'A' is given twice"),
        (
            TrendRequest(series=tuple(f"S{i}=x" for i in range(MAX_SERIES + 1))),
            f"at most {MAX_SERIES} series",
        ),
        (TrendRequest(q="audi", series=("A=x",)), "not both"),
        (TrendRequest(series=("A=where: brand>x",)), "needs a number or date field"),
        (TrendRequest(series=("A\x07=x",)), "bad series label"),
        (TrendRequest(series=("A" * 41 + "=x",)), "bad series label"),
        (TrendRequest(where=("bogus=1",)), "unknown field 'bogus'"),
        (TrendRequest(start="yesterday"), "not a valid datetime value for field from"),
        (TrendRequest(start="2024-01-01", end="2023-01-01"), "is after to"),
        (TrendRequest(top=0), "top must be between 1 and 1000"),
        (TrendRequest(top=10**6), "top must be between 1 and 1000"),
    ],
)
def test_bad_requests_say_why(library, request_, reason):
    with pytest.raises(SearchError) as caught:
        library.trend(request_)
    assert reason in str(caught.value)


# ---------------------------------------------------------------------- the command


def env_of(settings) -> dict:
    return {"ADSEARCH_DB": str(settings.db), "ADSEARCH_CLIP_MODEL": str(settings.clip_model)}


def test_cli_prints_a_table_and_the_same_json(trend_settings, rows):
    table = adsearch("trend", "--field", FIELD, "--by", "year", env_extra=env_of(trend_settings))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == f"{FIELD} by year (all: exact)"
    per_year = Counter(r["day"].year for r in rows)
    for year, n in per_year.items():
        assert any(line.split() == [str(year), str(n)] for line in lines), table.stdout
    assert lines[-1].split() == ["total", str(len(rows))]
    series = ["--series", "Food=where: category=food", "--series", "Cars=where: category=cars"]
    result = adsearch(
        "trend", "--field", FIELD, "--by", "year", *series, "--json", env_extra=env_of(trend_settings)
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    for bucket in answer["buckets"]:
        year = int(bucket["label"])
        assert bucket["counts"]["Food"] == sum(
            1 for r in rows if r["day"].year == year and r["category"] == "food"
        )
    shared = adsearch("trend", "--field", FIELD, "--by", "year", *series, env_extra=env_of(trend_settings))
    assert "share" in shared.stdout.splitlines()[1] and "%" in shared.stdout


def test_cli_labels_a_ranked_query(trend_settings):
    result = adsearch("trend", "burger", "--top", "4", "--field", FIELD, "--by", "year",
                      env_extra=env_of(trend_settings))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "burger: ads among the top 4" in result.stdout.splitlines()[0]
    assert "note: burger: ads among the top 4 hits" in result.stdout


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--field", "brand"), "cannot count by 'brand'"),
        (("--field", FIELD, "--by", "day"), "use a coarser --by"),
        (("--series", "oops"), "bad series 'oops'"),
        (("--from", "2024-13-01"), "not a valid datetime value"),
        (("--by", "decade"), "invalid choice: 'decade'"),
    ],
)
def test_cli_refuses_bad_input_in_one_line(trend_settings, args, reason):
    result = adsearch("trend", *args, env_extra=env_of(trend_settings))
    assert result.returncode == 2 and reason in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    if args[0] != "--by":
        assert result.stderr.count("\n") == 1
