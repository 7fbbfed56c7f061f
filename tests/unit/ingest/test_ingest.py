"""Ingest of the synthetic sample into the real embedded store, with real Tesseract and encoders."""

from __future__ import annotations

import shutil

from engine.ingest.ingestor import ingest
from engine.media.sources import discover_sources
from engine.store import EdgeStore, point_id


def test_every_sample_image_becomes_one_point(ingested, sample_dir, truth):
    store, report = ingested
    assert report.found == len(truth) and report.ingested == len(truth) and not report.failed
    assert store.count() == len(truth) == store.count("image")
    payloads = dict(store.scroll())
    files = {str((sample_dir / ad["file"]).resolve()) for ad in truth}
    assert {p for payload in payloads.values() for p in payload["paths"]} == files


def test_payload_holds_hash_size_ocr_and_pipeline(ingested, sample_dir, truth):
    store, _ = ingested
    ad = next(a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"])
    import hashlib

    data = (sample_dir / ad["file"]).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    payload = store.retrieve([point_id(sha)])[point_id(sha)]
    assert payload["sha256"] == sha and payload["bytes"] == len(data)
    assert ad["brand"] in payload["ocr_text"] and payload["has_text"]
    assert payload["ocr_words"] and {"text", "confidence", "left", "top", "width", "height"} <= set(
        payload["ocr_words"][0]
    )
    assert payload["pipeline"]["models"]["image"] and payload["pipeline"]["signature"]
    assert payload["width"] > 0 and payload["format"] in ("PNG", "JPEG")


def test_images_without_text_have_no_text_vectors(ingested, sample_dir, truth):
    store, _ = ingested
    import hashlib

    no_text = [a for a in truth if not a["text"]]
    assert no_text
    for ad in no_text:
        pid = point_id(hashlib.sha256((sample_dir / ad["file"]).read_bytes()).hexdigest())
        point = store.retrieve([pid], with_vectors=True)[pid]
        assert point["_vectors"] == ["creative", "image"] and point["ocr_text"] == ""
    assert store.count("text") == store.count("keywords") < store.count()


def test_reingesting_the_same_folder_changes_nothing(ingested, settings, encoders, sample_dir):
    store, first = ingested
    before = dict(store.scroll())
    again = ingest([sample_dir / "images"], settings, encoders, store, progress=False)
    assert again.ingested == 0 and again.unchanged == first.ingested and not again.failed
    assert dict(store.scroll()) == before  # same ids, same payloads (even ingested_at)


def test_bad_files_are_reported_and_the_rest_ingested(tmp_path, settings, encoders, sample_dir, truth):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    good = [sample_dir / truth[0]["file"], sample_dir / truth[1]["file"]]
    shutil.copy(good[0], folder / "good.png")
    shutil.copy(good[1], folder / "sub" / "good2.jpg")
    data = good[1].read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "notes.jpg").write_text("this is not an image")
    (folder / "empty.png").write_bytes(b"")
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    errors = []
    with EdgeStore(tmp_path / "db", "ads") as store:
        report = ingest(
            [folder], settings, encoders, store, lambda p, r: errors.append((p, r)), progress=False
        )
        assert store.count() == 2
    failed = {p.rsplit("/", 1)[-1]: reason for p, reason in report.failed}
    assert set(failed) == {"truncated.jpg", "notes.jpg", "empty.png"}
    assert "not an image" in failed["notes.jpg"] and "empty" in failed["empty.png"]
    assert "truncated" in failed["truncated.jpg"] or "corrupt" in failed["truncated.jpg"]
    assert report.ingested == 2 and report.found == 5 and errors == report.failed


def test_identical_bytes_collapse_into_one_point_with_all_paths(
    tmp_path, settings, encoders, sample_dir, truth
):
    folder = tmp_path / "dupes"
    folder.mkdir()
    source = sample_dir / truth[2]["file"]
    for name in ("a.png", "b.png"):
        shutil.copy(source, folder / name)
    with EdgeStore(tmp_path / "db", "ads") as store:
        report = ingest([folder], settings, encoders, store, progress=False)
        assert store.count() == 1 and report.ingested == 1 and report.new_paths == 1
        shutil.copy(source, folder / "c.png")  # a third copy later: added to the same point
        later = ingest([folder], settings, encoders, store, progress=False)
        assert later.ingested == 0 and later.new_paths == 1 and later.unchanged == 2
        (payload,) = [p for _, p in store.scroll()]
    assert sorted(p.rsplit("/", 1)[-1] for p in payload["paths"]) == ["a.png", "b.png", "c.png"]


def test_a_pipeline_change_reprocesses(tmp_path, settings, encoders, sample_dir, truth):
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(sample_dir / truth[0]["file"], folder / "a.png")
    with EdgeStore(tmp_path / "db", "ads") as store:
        ingest([folder], settings, encoders, store, progress=False)
        changed = settings.with_overrides(ocr_min_confidence=70.0, ocr_ppocr_min_confidence=70.0)
        report = ingest([folder], changed, encoders, store, progress=False)
        assert report.ingested == 1 and store.count() == 1


def test_discover_is_recursive_filters_suffixes_and_survives_symlink_loops(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.JPG", "a/b/y.webp", "a/b/z.tiff", "a/skip.txt", "top.gif"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a" / "b" / "loop").symlink_to(tmp_path / "a")
    found = sorted(s.relative for s in discover_sources([tmp_path]))
    assert found == ["a/b/y.webp", "a/b/z.tiff", "a/x.JPG", "top.gif"]


class CrashingStore(EdgeStore):
    """An embedded store whose process 'dies' after a number of upserts (as a kill mid-ingest would)."""

    def __init__(self, *args, upserts_before_crash: int):
        super().__init__(*args)
        self.left = upserts_before_crash

    def upsert(self, points):
        if self.left == 0:
            raise SystemExit("simulated crash")
        self.left -= 1
        super().upsert(points)


def test_a_crash_mid_ingest_then_a_rerun_equals_one_clean_run(
    tmp_path, settings, encoders, sample_dir, ingested
):
    import pytest

    small = settings.with_overrides(batch_size=4)
    with pytest.raises(SystemExit), CrashingStore(tmp_path / "db", "ads", upserts_before_crash=2) as store:
        ingest([sample_dir / "images"], small, encoders, store, progress=False)
    with EdgeStore(tmp_path / "db", "ads") as store:
        assert 0 < store.count() < ingested[0].count()  # the crash left a partial collection
        report = ingest([sample_dir / "images"], small, encoders, store, progress=False)
        resumed = dict(store.scroll())
    clean = dict(ingested[0].scroll())
    assert report.unchanged == 8 and report.ingested == len(clean) - 8
    assert set(resumed) == set(clean)
    for pid, payload in clean.items():  # same payloads but for the time of ingest
        assert {**resumed[pid], "ingested_at": None} == {**payload, "ingested_at": None}


def test_tesseract_is_limited_to_one_thread_per_process():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
    code = "import os, ocr_text; print(os.environ['OMP_THREAD_LIMIT'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_an_encoder_change_reencodes_but_keeps_the_ocr_and_every_path(
    tmp_path, settings, encoders, sample_dir, truth
):
    from engine.models.encoders import Encoders, SparseTextEncoder

    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(sample_dir / truth[0]["file"], folder / name)
    plain_bm25 = Encoders(encoders.clip, encoders.dense, SparseTextEncoder(ngram=0))
    with EdgeStore(tmp_path / "db", "ads") as store:
        ingest([folder], settings, encoders, store, progress=False)
        (before,) = [p for _, p in store.scroll()]
        report = ingest([folder / "a.png"], settings, plain_bm25, store, progress=False)
        (after,) = [p for _, p in store.scroll()]
    assert report.ingested == 1 and report.ocr_seconds == 0.0  # re-encoded without OCR
    assert after["ocr_words"] == before["ocr_words"] and after["ocr_text"] == before["ocr_text"]
    assert sorted(after["paths"]) == sorted(before["paths"]) and len(after["paths"]) == 2
    assert after["pipeline"]["models"]["keywords"] != before["pipeline"]["models"]["keywords"]


def test_a_killed_ocr_worker_fails_only_its_files_and_the_run_goes_on(
    tmp_path, settings, encoders, sample_dir, ingested
):
    import multiprocessing
    import os
    import signal
    import threading
    import time

    from engine.ingest.ingestor import Ingestor

    killed = []
    with EdgeStore(tmp_path / "db", "ads") as store:
        ingestor = Ingestor(settings.with_overrides(batch_size=2), encoders, store, progress=False)

        def kill_a_worker_mid_run():
            deadline = time.monotonic() + 120
            while ingestor.report.ingested < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            workers = multiprocessing.active_children()
            if workers and ingestor.report.ingested < ingested[0].count():
                os.kill(workers[0].pid, signal.SIGKILL)  # like the OOM killer or a native crash
                killed.append(workers[0].pid)

        killer = threading.Thread(target=kill_a_worker_mid_run)
        killer.start()
        report = ingestor.run([sample_dir / "images"])
        killer.join()
        assert killed, "the run ended before a worker could be killed"
        assert report.failed and all("worker crashed" in reason for _, reason in report.failed)
        assert len(report.failed) == 1  # one file is reported, the others in flight were requeued
        assert report.ingested + len(report.failed) + report.new_paths == report.found
        rerun = ingest([sample_dir / "images"], settings, encoders, store, progress=False)
        assert rerun.ingested == len(report.failed) and not rerun.failed
        assert store.count() == ingested[0].count()


def test_changing_the_readers_re_ocrs_old_points_and_only_those(
    tmp_path, settings, encoders, sample_dir, truth
):
    folder = tmp_path / "ads"
    folder.mkdir()
    with_text = [a for a in truth if a["text"]][:3]
    for ad in with_text[:2]:
        shutil.copy(sample_dir / ad["file"], folder)
    tesseract_only = settings.with_overrides(ocr_readers=("tesseract",))
    with EdgeStore(tmp_path / "db", "ads") as store:
        first = ingest([folder], tesseract_only, encoders, store, progress=False)
        old = dict(store.scroll())
        assert first.ingested == 2 and all(p["ocr_readers"] == ["tesseract"] for p in old.values())
        assert all(w["reader"] == "tesseract" for p in old.values() for w in p["ocr_words"])
        both = settings.with_overrides(ocr_readers=("tesseract", "ppocr"))
        second = ingest([folder], both, encoders, store, progress=False)
        assert second.ingested == 2 and second.unchanged == 0  # old signature: OCR again
        new = dict(store.scroll())
        assert set(new) == set(old) and all(p["ocr_readers"] == ["tesseract", "ppocr"] for p in new.values())
        assert {w["reader"] for p in new.values() for w in p["ocr_words"]} <= {"tesseract", "ppocr"}
        assert all(sum(p["ocr_words_by_reader"].values()) == len(p["ocr_words"]) for p in new.values())
        shutil.copy(sample_dir / with_text[2]["file"], folder)
        third = ingest([folder], both, encoders, store, progress=False)
        assert third.ingested == 1 and third.unchanged == 2  # only the new file is read
        assert {k: v for k, v in dict(store.scroll()).items() if k in new} == new


def test_a_reader_failing_during_ingest_is_kept_and_retried(
    tmp_path, monkeypatch, settings, encoders, sample_dir, truth
):
    """A reader that fails on an image leaves the other reader's words stored with the failure
    recorded; the next run reads that image again."""
    from concurrent.futures import ThreadPoolExecutor

    import ocr_text.pipeline as pipeline
    from engine.ingest.executors.local import LocalExecutor

    class Broken:
        name = "ppocr"

        def read(self, image):
            raise RuntimeError("model exploded")

    folder = tmp_path / "ads"
    folder.mkdir()
    ad = next(a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"])
    shutil.copy(sample_dir / ad["file"], folder)
    both = settings.with_overrides(ocr_readers=("tesseract", "ppocr"))
    real = pipeline.load_reader
    with EdgeStore(tmp_path / "db", "ads") as store:
        with monkeypatch.context() as patch:  # OCR in this process, where the broken reader is seen
            patch.setattr(LocalExecutor, "_new_pool", lambda self: ThreadPoolExecutor(max_workers=1))
            patch.setattr(pipeline, "load_reader", lambda n, s: Broken() if n == "ppocr" else real(n, s))
            first = ingest([folder], both, encoders, store, progress=False)
            (payload,) = dict(store.scroll()).values()
        assert first.ingested == 1 and payload["ocr_errors"] == {"ppocr": "RuntimeError: model exploded"}
        assert ad["brand"] in payload["ocr_text"] and payload["ocr_readers"] == ["tesseract"]
        again = ingest([folder], both, encoders, store, progress=False)
        (payload,) = dict(store.scroll()).values()
        assert again.ingested == 1 and payload["ocr_errors"] == {}
        assert payload["ocr_readers"] == ["tesseract", "ppocr"]
