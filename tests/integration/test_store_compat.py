"""A store an older commit made (ce2ded0: tests/fixtures/store-ce2ded0) opens, searches and counts
with today's code, and re-ingesting its files finds every image unchanged: nothing is read or
encoded again, because the pipeline signature ce2ded0 wrote is still the one today's code computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engine.library import Library
from engine.search import SearchRequest
from engine.settings import Settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store-ce2ded0"
# Where the files were when ce2ded0 ingested them: the points' `paths` name them there.
IMAGES_AT = Path("/tmp/adsearch-store-ce2ded0/images")
BURGER = "001-brisko-burger.jpg"  # "Double cheeseburger deal only $3.99": no other ad says cheeseburger
FIXTURE_IMAGES = sorted(p.name for p in (FIXTURE / "images").iterdir())


def _put_images_back() -> list[Path]:
    """The fixture's images at the paths the store records (written atomically: another test run may
    be doing the same), returned in order."""
    IMAGES_AT.mkdir(parents=True, exist_ok=True)
    placed = []
    for name in FIXTURE_IMAGES:
        data, target = (FIXTURE / "images" / name).read_bytes(), IMAGES_AT / name
        if not target.is_file() or target.read_bytes() != data:
            partial = target.with_name(f".{name}.{os.getpid()}")
            partial.write_bytes(data)
            os.replace(partial, target)
        placed.append(target)
    return placed


@pytest.fixture
def old_db(tmp_path) -> Path:
    """A fresh copy of the ce2ded0 store (its shard's files unpacked sparse, as it wrote them)."""
    db = tmp_path / "db"
    with tarfile.open(FIXTURE / "store.tar.gz") as archive:
        archive.extractall(db, filter="data")
    return db


def _settings(db: Path, tmp_path: Path) -> Settings:
    # no CLIP here, as when the store was made: a CLIP found in some cache would be a new pipeline
    return Settings(db=db, clip_model=str(tmp_path / "no-clip-weights"), workers=1)


def test_the_old_store_opens_searches_and_counts(old_db, tmp_path):
    with Library(_settings(old_db, tmp_path)) as library:
        assert library.exists()
        for mode in ("keyword", "hybrid"):
            hits = library.search(SearchRequest(q="cheeseburger", mode=mode, k=3)).hits
            assert hits and hits[0].paths == [str(IMAGES_AT / BURGER)], mode
            assert library.get(hits[0].id)["brand"] == "BRISKO BURGER"
        stats = library.stats()
        assert stats["images"] == stats["with_text"] == len(FIXTURE_IMAGES)
        assert stats["with_image_vector"] == 0 and not stats["visual"]
        assert stats["formats"] == {"PNG": 3, "JPEG": 3}
        categories = library.facets("category")["values"]
        assert {v["value"]: v["count"] for v in categories} == {
            "cars": 1, "food": 1, "drinks": 1, "finance": 1, "beauty": 1, "electronics": 1,
        }  # fmt: skip
        bank = library.search(SearchRequest(q="bank", where=["category=finance", "budget>=20000"], k=5))
        assert [library.get(h.id)["brand"] for h in bank.hits] == ["ZENTRA BANK"]


def test_re_ingesting_its_files_finds_every_image_unchanged(old_db, tmp_path):
    files = _put_images_back()
    failures: dict[str, str] = {}
    with Library(_settings(old_db, tmp_path)) as library:
        signature = library.store.metadata()["pipeline"]["signature"]
        report = library.ingest(files, on_error=failures.__setitem__)
        assert not failures
        assert (report.found, report.unchanged, report.ingested, report.new_paths) == (6, 6, 0, 0)
        assert report.ocr_seconds == report.encode_seconds == 0  # no worker read, nothing encoded
        assert library.store.metadata()["pipeline"]["signature"] == signature


def test_the_cli_searches_the_old_store(old_db, tmp_path):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ADSEARCH_DB": str(old_db),
        "ADSEARCH_CLIP_MODEL": str(tmp_path / "no-clip-weights"),
    }

    def adsearch(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "engine.cli", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)

    found = adsearch("search", "cheeseburger", "--mode", "keyword", "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"][0]["paths"] == [str(IMAGES_AT / BURGER)]
    facets = adsearch("facets", "category")
    assert facets.returncode == 0 and "electronics" in facets.stdout, facets.stderr
    stats = adsearch("stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["images"] == len(FIXTURE_IMAGES)
