"""The `adsearch` console script, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from helpers import adsearch

from engine.settings import Settings


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory, sample_dir, truth, tiny_clip_dir):
    folder = tmp_path_factory.mktemp("cli-ads")
    ads = [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]][:3]
    for ad in ads:
        shutil.copy(sample_dir / ad["file"], folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    db = tmp_path_factory.mktemp("cli-db")
    env = {"ADSEARCH_DB": str(db), "ADSEARCH_CLIP_MODEL": str(tiny_clip_dir), "ADSEARCH_WORKERS": "2"}
    result = adsearch("ingest", str(folder), "--no-progress", env_extra=env)
    return result, env, ads


def test_help_explains_the_commands():
    result = adsearch("--help")
    assert result.returncode == 0
    for command in ("ingest", "search", "serve", "ocr", "stats", "migrate", "evaluate", "ADSEARCH_"):
        assert command in result.stdout
    search_help = adsearch("search", "--help").stdout
    assert "--mode" in search_help and "--weights" in search_help and "--image" in search_help


def test_ingest_reports_the_bad_file_and_exits_1(cli_db):
    result, _, ads = cli_db
    assert result.returncode == 1, result.stderr
    assert "broken.png" in result.stderr and "error:" in result.stderr
    assert f"ingested {len(ads)}," in result.stdout and "failed 1 of 4" in result.stdout


def test_search_json_and_text_output(cli_db):
    _, env, ads = cli_db
    result = adsearch("search", ads[0]["brand"], "--mode", "keyword", "--json", env_extra=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["hits"][0]["paths"][0].endswith(ads[0]["file"].rsplit("/", 1)[-1])
    assert data["hits"][0]["channels"]["keywords"]["rank"] == 1
    text = adsearch("search", ads[1]["headline"], "-k", "2", env_extra=env)
    lines = text.stdout.splitlines()
    assert text.returncode == 0 and lines[1].startswith("fusion: ")  # how the channels were weighed
    assert ads[1]["file"].rsplit("/", 1)[-1] in lines[2]


def test_stats(cli_db):
    _, env, ads = cli_db
    data = json.loads(adsearch("stats", "--json", env_extra=env).stdout)
    assert data["images"] == len(ads) and data["with_text"] == len(ads) and data["visual"] is True
    text = adsearch("stats", env_extra=env).stdout
    checks = data["pipeline"]["quantisation"]  # CLIP was asked for in int8: each tower was checked
    assert set(checks) == {"clip-image", "clip-text"}
    for tower, check in checks.items():
        line = next(line for line in text.splitlines() if f"int8 {tower}" in line)
        shown = re.search(r"cosine ([0-9.]+) (>=|<) ([0-9.]+)", line)
        assert shown and abs(float(shown[1]) - check["cosine"]) < 1e-5, line  # the figure, not its digits
        assert (shown[2] == ">=") == (check["cosine"] >= check["min_cosine"])
    depth = Settings().prefetch_limit  # the built-in default, whatever it is
    assert (
        f"fusion:            RRF k 3, weights image 1, text 3, keywords 1, prefetch {depth} (built-in" in text
    )


def test_ocr_prints_text_and_words(sample_dir, truth):
    ad = next(a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"])
    result = adsearch("ocr", str(sample_dir / ad["file"]))
    assert result.returncode == 0 and ad["brand"] in result.stdout and "mean confidence" in result.stdout
    words = json.loads(adsearch("ocr", str(sample_dir / ad["file"]), "--json").stdout)["words"]
    assert any(w["text"] == ad["brand"].split()[0] for w in words)


def test_errors_are_one_clear_line(tmp_path):
    missing = adsearch("search", "x", "--db", str(tmp_path / "empty"), "--clip-model", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr and "adsearch ingest" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = adsearch("search", "x", "--weights", "pixels=2", "--db", str(tmp_path / "empty"))
    assert bad.returncode == 2 and "bad weight" in bad.stderr
    nofile = adsearch("ocr", str(tmp_path / "nope.png"))
    assert nofile.returncode == 2 and "no such file" in nofile.stderr
    for scales in ("[]", "[0, 700]", "700px"):
        env = adsearch("ocr", str(tmp_path / "nope.png"), env_extra={"ADSEARCH_OCR_SCALES": scales})
        assert env.returncode == 2 and "bad setting" in env.stderr and "OCR_SCALES" in env.stderr.upper(), (
            scales
        )
        assert "Traceback" not in env.stderr


def test_search_filters_browse_and_facets(cli_db):
    _, env, ads = cli_db
    facets = json.loads(adsearch("facets", "width", "--json", env_extra=env).stdout)
    widths = sorted((row["value"] for row in facets["values"] for _ in range(row["count"])), reverse=True)
    assert facets["type"] == "integer" and len(widths) == len(ads)
    cut = widths[0]  # the widest image(s) only
    browse = json.loads(adsearch("search", "--where", f"width>={cut}", "--json", env_extra=env).stdout)
    assert browse["mode"] == "browse" and browse["total"] == widths.count(cut) == len(browse["hits"])
    assert all(hit["width"] >= cut for hit in browse["hits"])
    ordered = json.loads(adsearch("search", "--sort", "width", "--asc", "--json", env_extra=env).stdout)
    assert [hit["width"] for hit in ordered["hits"]] == sorted(widths)
    query = ads[0]["brand"]
    narrowed = json.loads(
        adsearch(
            "search", query, "--where", f"width<{cut}", "--mode", "keyword", "--json", env_extra=env
        ).stdout
    )
    assert narrowed["total"] == len(ads) - widths.count(cut)
    assert all(hit["width"] < cut for hit in narrowed["hits"])


def test_bad_filters_and_facets_are_one_line_and_exit_2(cli_db):
    _, env, _ = cli_db
    for args, reason in [
        (["search", "car", "--where", "colour=red"], "unknown field 'colour'"),
        (["search", "car", "--where", "width>=wide"], "not a valid integer"),
        (["search", "--sort", "format"], "cannot sort by 'format'"),
        (["facets", "ocr_confidence"], "cannot count values of 'ocr_confidence'"),
    ]:
        result = adsearch(*args, env_extra=env)
        assert result.returncode == 2, (args, result.stderr)
        assert reason in result.stderr and "Traceback" not in result.stderr


def test_doctor_says_what_works_and_exits_by_what_was_asked(cli_db):
    _, env, ads = cli_db
    result = adsearch("doctor", env_extra=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {
        line.split()[1]: line
        for line in result.stdout.splitlines()
        if line[:4].strip() in ("ok", "off", "fail")
    }
    assert lines["clip"].startswith("ok") and "local folder" in lines["clip"]
    assert lines["store"].startswith("ok") and f"{len(ads)} images" in lines["store"]
    assert lines["pipeline"].startswith("ok") and "(current)" in lines["pipeline"]
    assert lines["tesseract"].startswith("ok") and "eng" in lines["tesseract"]
    no_clip = {**env, "ADSEARCH_CLIP_MODEL": "/nonexistent/clip"}
    off = adsearch("doctor", env_extra=no_clip)
    assert off.returncode == 0 and "off   clip       image channel off" in off.stdout
    assert "adsearch models download" in off.stdout
    required = adsearch("doctor", "--require-visual", env_extra=no_clip)
    assert required.returncode == 1 and "fail  clip" in required.stdout


def test_without_clip_weights_search_says_so_in_one_line_that_points_to_doctor(cli_db):
    _, env, ads = cli_db
    result = adsearch(
        "search", ads[0]["brand"], "-k", "1", env_extra={**env, "ADSEARCH_CLIP_MODEL": "/nonexistent/clip"}
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "image channel off" in line]
    assert len(warnings) == 1 and "adsearch doctor" in warnings[0] and len(warnings[0]) < 120
    assert "image channel off" not in result.stdout and "(hybrid: text, keywords)" in result.stdout
