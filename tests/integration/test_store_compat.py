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


def test_the_old_store_is_upgraded_to_the_current_format_on_open(old_db, tmp_path):
    """ce2ded0 recorded no store format (format 0): opening records the current one, and the points
    are untouched (0 -> 1 changes no layout)."""
    from engine.store import open_store
    from engine.store.format import FORMAT_KEY, STORE_FORMAT

    settings = _settings(old_db, tmp_path)
    with tarfile.open(FIXTURE / "store.tar.gz") as archive:
        assert not any(FORMAT_KEY in m.name for m in archive.getmembers())
    with open_store(settings) as store:
        assert store.metadata()[FORMAT_KEY] == STORE_FORMAT
        count = store.count()
    with open_store(settings) as store:  # a second open finds the format recorded, nothing to do
        assert store.metadata()[FORMAT_KEY] == STORE_FORMAT and store.count() == count == len(FIXTURE_IMAGES)


def test_a_newer_store_format_is_refused_with_one_line_saying_what_to_do(old_db, tmp_path):
    from engine.errors import StoreError
    from engine.store import open_store
    from engine.store.format import FORMAT_KEY, STORE_FORMAT

    settings = _settings(old_db, tmp_path)
    with open_store(settings) as store:
        store.update_metadata({FORMAT_KEY: STORE_FORMAT + 1})
    with pytest.raises(StoreError, match="cannot read: upgrade adsearch, or `adsearch restore`"):
        open_store(settings)
    env = {**os.environ, "ADSEARCH_DB": str(old_db), "ADSEARCH_CLIP_MODEL": str(tmp_path / "no-clip-weights")}
    cli = subprocess.run(
        [sys.executable, "-m", "engine.cli", "search", "burger"], capture_output=True, text=True, env=env
    )
    assert cli.returncode == 2 and cli.stdout == ""
    assert cli.stderr.count("\n") == 1 and f"store format {STORE_FORMAT + 1}" in cli.stderr
    with open_store(settings.with_overrides(db=tmp_path / "other")) as fresh:  # no collection: not refused
        assert fresh.dims() is None


START = Path(__file__).resolve().parents[1] / "fixtures" / "store-af523e5"  # where issue 24 began
START_IMAGES_AT = Path("/tmp/adsearch-store-af523e5/images")


def test_a_store_from_the_start_of_issue_24_opens_searches_keeps_its_boards_and_watches_and_ingests(tmp_path):
    from engine.store.format import FORMAT_KEY, STORE_FORMAT

    db = tmp_path / "db"
    with tarfile.open(START / "store.tar.gz") as archive:
        archive.extractall(db, filter="data")
    START_IMAGES_AT.mkdir(parents=True, exist_ok=True)
    for name in FIXTURE_IMAGES:
        (START_IMAGES_AT / name).write_bytes((FIXTURE / "images" / name).read_bytes())
    with Library(_settings(db, tmp_path)) as library:
        assert library.store.metadata()[FORMAT_KEY] == STORE_FORMAT  # format 0, upgraded on open
        top = library.search(SearchRequest(q="cheeseburger", mode="keyword", k=1)).hits[0]
        assert Path(top.paths[0]).name == BURGER
        assert [(b["name"], b["count"]) for b in library.boards.list()] == [("Food deals", 1)]
        assert library.boards.ids("Food deals") == [top.id]
        assert [w.name for w in library.watches.all()] == ["pngs"]
        new = tmp_path / "new"
        new.mkdir()
        (new / "copy.png").write_bytes(png_of_text("ZEPHYRA SODA"))
        report = library.ingest([new, START_IMAGES_AT])
        assert (report.ingested, report.unchanged) == (1, len(FIXTURE_IMAGES))
        assert report.watch_matches == {"pngs": 1}  # the watch made by af523e5 collects the new PNG
        assert library.store.count() == len(FIXTURE_IMAGES) + 1


def png_of_text(text: str) -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (480, 160), "white")
    ImageDraw.Draw(image).text((20, 60), text, fill="black", font_size=40)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
