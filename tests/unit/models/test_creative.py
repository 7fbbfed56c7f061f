"""The creative fingerprint: copies of an ad found as the same creative, other ads not; duplicate
mode through the Library and the CLI; duplicate groups in the statistics; old collections get the
vector on the next ingest without OCR running again."""

from __future__ import annotations

import io
import itertools
import json
import shutil

import numpy as np
import pytest
from helpers import adsearch
from PIL import Image, ImageDraw, ImageEnhance

from engine.errors import SearchError
from engine.ingest.ingestor import ingest
from engine.library import Library
from engine.models.creative import CREATIVE_DIM, THRESHOLD, creative_vector
from engine.schema import CREATIVE_CHANNEL
from engine.search import SearchRequest
from engine.store import EdgeStore, PointData, point_id


def _copies(image: Image.Image) -> dict[str, Image.Image]:
    w, h = image.size
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=35)
    sticker = image.copy()
    ImageDraw.Draw(sticker).rectangle((w // 10, h // 10, w // 10 + w // 5, h // 10 + h // 10), fill="red")
    return {
        "resize": image.resize((int(w * 0.6), int(h * 0.6))),
        "jpeg": Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"),
        "crop": image.crop((int(w * 0.04), int(h * 0.03), int(w * 0.97), int(h * 0.96))),
        "sticker": sticker,
        "colour": ImageEnhance.Color(ImageEnhance.Brightness(image).enhance(1.1)).enhance(0.8),
    }


def _cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


def test_copies_are_the_same_creative_and_distinct_ads_are_not():
    """On real ads (ads377, in shared/ beside the repo; the synthetic sample's flat templates look
    alike to any perceptual hash): every generated copy of 12 ads passes the threshold with its
    original, and no two of the 12 originals do."""
    import random

    from bench.common import ADS377
    from bench.duplicates import KINDS, variant

    files = sorted((ADS377 / "images").glob("*/*.jpg"))[::31]
    if len(files) < 12:
        pytest.skip("ads377 is not in shared/data")
    rng = random.Random(5)
    originals = [Image.open(f).convert("RGB") for f in files]
    vectors = [creative_vector(im) for im in originals]
    assert all(len(v) == CREATIVE_DIM and abs(np.linalg.norm(v) - 1) < 1e-6 for v in vectors)
    for image, vector in zip(originals, vectors, strict=True):
        for kind in KINDS:
            copy, detail = variant(image, kind, rng)
            assert _cos(creative_vector(copy), vector) >= THRESHOLD, (kind, detail)
    for a, b in itertools.combinations(vectors, 2):
        assert _cos(a, b) < THRESHOLD


@pytest.fixture(scope="module")
def dup_library(tmp_path_factory, settings, encoders, sample_dir, truth):
    """Three ads plus a cropped and a restickered copy of the first, ingested."""
    folder = tmp_path_factory.mktemp("dup-ads")
    ads = [a for a in truth if a["brand"] and not a["rotated"]][:3]
    for ad in ads:
        shutil.copy(sample_dir / ad["file"], folder)
    first = Image.open(sample_dir / ads[0]["file"]).convert("RGB")
    copies = _copies(first)
    copies["crop"].save(folder / "copy-crop.png")
    copies["sticker"].save(folder / "copy-sticker.jpg", quality=80)
    library = Library(settings.with_overrides(db=tmp_path_factory.mktemp("dup-db")), encoders=encoders)
    library.ingest([folder])

    def pid(name: str) -> str:
        import hashlib

        return point_id(hashlib.sha256((folder / name).read_bytes()).hexdigest())

    ids = {
        "first": pid(ads[0]["file"].rsplit("/", 1)[-1]),
        "others": [pid(a["file"].rsplit("/", 1)[-1]) for a in ads[1:]],
        "crop": pid("copy-crop.png"),
        "sticker": pid("copy-sticker.jpg"),
    }
    yield library, folder, ids, copies
    library.close()


def test_duplicate_mode_finds_the_copies_and_only_them(dup_library):
    library, _, ids, copies = dup_library
    copy_ids = {ids["first"], ids["crop"], ids["sticker"]}
    response = library.search(SearchRequest(mode="duplicate"), image=copies["resize"])
    assert {h.id for h in response.hits} == copy_ids  # not the 2 other ads, though k is 10
    assert response.channels == [CREATIVE_CHANNEL]
    assert all(h.score >= THRESHOLD for h in response.hits)
    similar = library.similar(ids["crop"], mode="duplicate")
    assert {h.id for h in similar.hits} == copy_ids - {ids["crop"]}
    assert library.similar(ids["others"][0], mode="duplicate").hits == []  # no copies: empty
    assert len(library.similar(ids["others"][0], mode="hybrid").hits) == 4  # other modes unchanged
    with pytest.raises(SearchError, match="query image"):
        library.search(SearchRequest(q="the safest sedan", mode="duplicate"))


def test_stats_report_the_group_of_copies(dup_library):
    library, _, ids, _ = dup_library
    assert library.duplicate_groups() == [sorted([ids["first"], ids["crop"], ids["sticker"]])]
    dup = library.stats()["duplicates"]
    assert dup["groups"] == 1 and dup["images_in_groups"] == 3 and dup["threshold"] == THRESHOLD
    assert dup["largest"][0]["size"] == 3 and dup["largest"][0]["example"]
    assert library.stats()["with_creative_vector"] == 5


def test_stats_of_a_big_collection_skip_the_grouping_and_say_so(dup_library, monkeypatch):
    """Above STATS_DUPLICATES_MAX images the statistics do not run one search per image."""
    import engine.admin.stats

    library = dup_library[0]
    monkeypatch.setattr(engine.admin.stats, "STATS_DUPLICATES_MAX", 4)  # the library holds 5
    monkeypatch.setattr(library, "duplicate_groups", lambda: pytest.fail("grouped anyway"))
    library._stats = None
    dup = library.stats()["duplicates"]
    library._stats = None  # the next test sees the full statistics again
    assert dup["groups"] is None and dup["largest"] == [] and "above 4 images" in dup["skipped"]


def test_an_old_collection_gets_the_vector_on_rerun_without_ocr(tmp_path, settings, encoders, dup_library):
    library, folder, ids, _ = dup_library
    old_pipeline = None
    with EdgeStore(tmp_path / "old", "ads") as old:
        dims = {k: v for k, v in library.store.dims().items() if k != CREATIVE_CHANNEL}
        old.ensure_collection(dims)  # as made before the fingerprint existed
        points = []
        for p in library.store.points():
            pipeline = {k: v for k, v in p.payload["pipeline"].items() if k != "creative"}
            old_pipeline = {**pipeline, "signature": "before-creative"}
            vectors = {k: v for k, v in p.vectors.items() if k != CREATIVE_CHANNEL}
            points.append(PointData(p.id, vectors, {**p.payload, "pipeline": old_pipeline}))
        old.upsert(points)
        assert old.count(CREATIVE_CHANNEL) == 0 and CREATIVE_CHANNEL not in old.dims()
        report = ingest([folder], settings, encoders, old, progress=False)
        assert report.ingested == 5 and report.ocr_seconds == 0.0  # re-encoded, OCR reused
        assert old.dims()[CREATIVE_CHANNEL] == CREATIVE_DIM and old.count(CREATIVE_CHANNEL) == 5
        assert old.vectors(ids["first"])[CREATIVE_CHANNEL] == pytest.approx(
            library.store.vectors(ids["first"])[CREATIVE_CHANNEL]
        )
        again = ingest([folder], settings, encoders, old, progress=False)
        assert again.ingested == 0 and again.unchanged == 5  # once only
    assert old_pipeline is not None
    with EdgeStore(tmp_path / "old", "ads") as reopened:  # the added vector survives a reopen
        assert reopened.dims()[CREATIVE_CHANNEL] == CREATIVE_DIM and reopened.count(CREATIVE_CHANNEL) == 5


def test_cli_duplicate_search_and_stats(tmp_path, settings, dup_library, tiny_clip_dir):
    library, folder, ids, copies = dup_library
    db = tmp_path / "cli"
    shutil.copytree(library.settings.db, db, ignore=shutil.ignore_patterns(".lock"))
    env = {"ADSEARCH_DB": str(db), "ADSEARCH_CLIP_MODEL": str(tiny_clip_dir)}
    query = tmp_path / "query.png"
    copies["colour"].save(query)
    result = adsearch("search", "--image", str(query), "--mode", "duplicate", "--json", env_extra=env)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert {h["id"] for h in hits} == {ids["first"], ids["crop"], ids["sticker"]}
    stats = adsearch("stats", env_extra=env)
    assert stats.returncode == 0, stats.stderr
    assert "duplicate groups:  1 (3 images" in stats.stdout
