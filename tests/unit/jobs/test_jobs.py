"""Upload jobs (issue #12): durable, journaled uploads ingested in the background, recovered after a crash.

Real components throughout: the embedded store, PP-OCR in worker processes, the tiny random CLIP, and,
for the crash test, `adsearch serve` as a real process killed with SIGKILL. Engine-level tests build a
Library of their own per test; its upload runner only runs once a test calls `lib.jobs.start()`, so
"queued" is a state a test can hold on to.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from dataset.synthetic import available_fonts, render_ad
from engine.errors import ImageError
from engine.ingest.ingestor import IngestHooks
from engine.library import Library
from engine.store import EdgeStore, point_id

FONTS = available_fonts()
DONE = ("ingested", "unchanged")


# --------------------------------------------------------------------------- helpers


def png(salt: int) -> bytes:
    """A small synthetic ad whose bytes no other test (and no sample image) has."""
    image, _ = render_ad(salt % 23, random.Random(salt), FONTS)
    image = image.resize((image.width // 2, image.height // 2))
    image.putpixel((2, 2), (salt % 251, (salt // 251) % 251, 77))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def id_of(data: bytes) -> str:
    return point_id(sha_of(data))


def open_library(settings, encoders, db: Path) -> Library:
    return Library(settings.with_overrides(db=db), encoders=encoders)


def uploads(lib: Library) -> set[str]:
    """Names of every file in the library's uploads folder (hidden ones included)."""
    return {p.name for p in lib.upload_dir.iterdir()} if lib.upload_dir.is_dir() else set()


def finish(lib: Library, job_id: str, timeout: float = 180):
    """Start the runner (if not yet) and wait for the job; it must end done."""
    lib.jobs.start()
    job = lib.jobs.wait(job_id, timeout)
    assert job.status == "done", job.public()
    return job


def statuses(job) -> list[str]:
    return [f.status for f in job.files]


@pytest.fixture
def lib(tmp_path, settings, encoders):
    library = open_library(settings, encoders, tmp_path / "db")
    yield library
    library.close()


# --------------------------------------------------------------------------- kill -9 during an upload


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(db: Path, settings, log: Path) -> tuple[subprocess.Popen, str]:
    """`adsearch serve` on `db` in a session of its own (its OCR workers share its process group)."""
    port = free_port()
    env = {
        **os.environ,
        "ADSEARCH_CLIP_MODEL": str(settings.clip_model),
        "HF_HUB_OFFLINE": "1",
        "ADSEARCH_WORKERS": "2",
        "ADSEARCH_BATCH_SIZE": "4",  # several batches per job: a kill lands between two of them
    }
    command = [sys.executable, "-m", "engine.cli", "serve", "--port", str(port), "--db", str(db)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(proc: subprocess.Popen, url: str, log: Path, timeout: float = 180) -> int:
    """Images in the collection once the server answers /health."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
        try:
            return httpx.get(f"{url}/health", timeout=5).json()["images"]
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError(f"the server did not answer /health in {timeout} s:\n{log.read_text()[-3000:]}")


def kill_hard(proc: subprocess.Popen) -> None:
    """SIGKILL the server, then whatever is left of its process group (orphaned OCR workers)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def poll_job(client: httpx.Client, job_id: str, until, timeout: float, step: float = 0.1) -> dict:
    """The job as soon as `until(job)` holds (or the last answer at the timeout)."""
    deadline = time.time() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if until(job) or time.time() > deadline:
            return job
        time.sleep(step)


def uploads_in(db: Path) -> set[str]:
    return {p.name for p in (db / "uploads").iterdir()}


def test_kill_9_during_a_20_file_upload_then_restart_ingests_all_and_leaves_no_orphans(
    tmp_path, settings, encoders, sample_dir
):
    db, log = tmp_path / "db", tmp_path / "server.log"
    with open_library(settings, encoders, db) as seeded:  # a collection exists before the upload
        seeded.ingest([sorted((sample_dir / "images").iterdir())[0]])
    files = [("files", (f"ad-{i:02}.png", png(5000 + i), "image/png")) for i in range(20)]
    servers = []
    try:
        proc, url = start_server(db, settings, log)
        servers.append(proc)
        before = wait_healthy(proc, url, log)
        assert before == 1
        with httpx.Client(base_url=url, timeout=120) as client:
            accepted = client.post("/api/images", files=files)
            assert accepted.status_code == 202, accepted.text
            job = accepted.json()
            assert accepted.headers["location"] == job["url"] == f"/api/jobs/{job['id']}"
            assert job["status"] in ("queued", "running") and job["progress"]["total"] == 20
            assert [r["status"] for r in job["results"]] == ["pending"] * 20
            assert len(uploads_in(db)) == 20  # every file is on disk before the 202
            at_kill = poll_job(client, job["id"], lambda j: j["progress"]["done"] >= 1, timeout=150)
        kill_hard(proc)
        assert at_kill["status"] == "running" and 1 <= at_kill["progress"]["done"] < 20, at_kill
        journal = json.loads((db / "jobs" / f"{job['id']}.json").read_text())
        assert journal["status"] == "running"  # the journal still holds the unfinished job

        orphan = db / "uploads" / f"{'ab' * 32}.png"  # saved by a request that never got its 202
        orphan.write_bytes(png(5099))
        (db / "uploads" / ".x.part").write_bytes(b"half a file")

        proc, url = start_server(db, settings, log)
        servers.append(proc)
        wait_healthy(proc, url, log)
        with httpx.Client(base_url=url, timeout=120) as client:
            known = client.get(job["url"])  # the journal is read before the server answers
            assert known.status_code == 200, f"the restarted server lost the accepted job: {known.text}"
            final = poll_job(client, job["id"], lambda j: j["status"] == "done", timeout=300, step=0.5)
            assert final["status"] == "done", final
            # the rerun reports what its first run wrote as ingested too (stored_before is journaled)
            assert [r["status"] for r in final["results"]] == ["ingested"] * 20, final["results"]
            assert final["counts"]["pending"] == final["counts"]["failed"] == 0
            ids = [r["id"] for r in final["results"]]
            assert len(set(ids)) == 20
            points = [client.get(f"/api/images/{i}") for i in ids]
            assert [p.status_code for p in points] == [200] * 20
            assert client.get("/health").json()["images"] == before + 20
        stored = {Path(p).name for p in sum((p.json()["paths"] for p in points), []) if "/uploads/" in p}
        assert uploads_in(db) == stored and len(stored) == 20  # no orphan, no .part, nothing missing
    finally:
        for proc in servers:
            kill_hard(proc)


# --------------------------------------------------------------------------- engine level


def test_submit_stores_and_journals_then_a_new_process_finishes_the_job(tmp_path, settings, encoders):
    db = tmp_path / "db"
    good = [png(100), png(101)]
    first = open_library(settings, encoders, db)
    try:
        job = first.jobs.submit(
            [("a.png", good[0]), ("notes.txt", b"not an image at all"), ("b.png", good[1])]
        )
        assert job.status == "queued" and statuses(job) == ["pending", "failed", "pending"]
        assert job.files[1].error and job.files[1].id is None
        assert [f.id for f in job.files[::2]] == [id_of(d) for d in good]
        assert uploads(first) == {f"{sha_of(d)}.png" for d in good}
        for entry, data in zip(job.files[::2], good, strict=True):
            assert Path(entry.stored).read_bytes() == data
        journal = json.loads((db / "jobs" / f"{job.id}.json").read_text())
        assert journal["id"] == job.id and journal["status"] == "queued"
        assert [f["status"] for f in journal["files"]] == ["pending", "failed", "pending"]
        public = job.public()
        assert public["counts"]["pending"] == 2 and public["counts"]["failed"] == 1
        assert public["progress"] == {"done": 0, "total": 3} and "url" not in public  # URLs are api/'s
        assert "stored" not in public["results"][0]  # server paths stay private
    finally:
        first.close()  # a crash before the runner got to it

    with open_library(settings, encoders, db) as second:
        done = finish(second, job.id)
        assert statuses(done) == ["ingested", "failed", "ingested"]
        assert done.public()["progress"] == {"done": 3, "total": 3}
        assert second.store.count() == 2 and set(second.store.retrieve([id_of(d) for d in good])) == {
            id_of(d) for d in good
        }
        assert uploads(second) == {f"{sha_of(d)}.png" for d in good}


def test_delete_of_a_pending_upload_cancels_it(lib):
    keep, drop = png(200), png(201)
    job = lib.jobs.submit([("keep.png", keep), ("drop.png", drop)])
    dropped = lib.upload_dir / f"{sha_of(drop)}.png"
    result = lib.delete(id_of(drop))
    assert result["cancelled_uploads"] == [job.id] and result["deleted"] is False
    assert result["files_removed"] == [str(dropped)] and not dropped.exists()
    done = finish(lib, job.id)
    assert statuses(done) == ["ingested", "cancelled"] and done.files[1].error
    assert set(lib.store.retrieve([id_of(keep), id_of(drop)])) == {id_of(keep)}
    assert uploads(lib) == {f"{sha_of(keep)}.png"}


def test_delete_during_a_running_job_cancels_that_file(lib, monkeypatch):
    keep, drop = png(250), png(251)
    started, go_on = threading.Event(), threading.Event()
    ingest = lib.ingest

    def held_ingest(*args, **kwargs):  # the job stays running until the DELETE is made, however fast
        started.set()
        assert go_on.wait(120), "the held ingest was never released"
        return ingest(*args, **kwargs)

    monkeypatch.setattr(lib, "ingest", held_ingest)
    lib.jobs.start()
    job = lib.jobs.submit([("keep.png", keep), ("drop.png", drop)])
    assert started.wait(120), "the job never started"
    assert lib.jobs.get(job.id).status == "running"
    try:  # the ingest then skips the cancelled file: not stored, file gone
        assert lib.delete(id_of(drop))["cancelled_uploads"] == [job.id]
    finally:
        go_on.set()
    done = lib.jobs.wait(job.id, 180)
    assert statuses(done) == ["ingested", "cancelled"]
    assert set(lib.store.retrieve([id_of(keep), id_of(drop)])) == {id_of(keep)}
    assert uploads(lib) == {f"{sha_of(keep)}.png"}


def test_delete_cancels_earlier_uploads_of_the_image_and_a_later_upload_adds_it_again(lib, tmp_path):
    data = png(300)
    original = tmp_path / "mine.png"
    original.write_bytes(data)
    lib.ingest([original])  # stored from the user's own file
    earlier = lib.jobs.submit([("again.png", data)])  # queued: same bytes as the stored image
    result = lib.delete(id_of(data))
    assert result["deleted"] and result["cancelled_uploads"] == [earlier.id]
    assert original.exists() and uploads(lib) == set()  # the user's file stays, the upload goes
    later = lib.jobs.submit([("after-delete.png", data)])
    assert statuses(finish(lib, earlier.id)) == ["cancelled"]
    assert statuses(finish(lib, later.id)) == ["ingested"]
    upload = str(lib.upload_dir / f"{sha_of(data)}.png")
    assert lib.get(id_of(data))["paths"] == [upload] and uploads(lib) == {Path(upload).name}


def test_the_same_bytes_twice_make_one_image(lib):
    data = png(400)
    twice = lib.jobs.submit([("one.png", data), ("two.png", data)])
    assert [f.id for f in twice.files] == [id_of(data)] * 2
    done = finish(lib, twice.id)
    assert statuses(done)[0] == "ingested" and all(s in DONE for s in statuses(done))
    assert lib.store.count() == 1 and uploads(lib) == {f"{sha_of(data)}.png"}
    third = lib.jobs.submit([("three.png", data)])
    assert statuses(finish(lib, third.id)) == ["unchanged"]
    assert lib.store.count() == 1 and lib.get(id_of(data))["paths"] == [
        str(lib.upload_dir / f"{sha_of(data)}.png")
    ]


def test_the_later_copy_in_one_upload_reports_unchanged(lib):
    data = png(450)
    job = lib.jobs.submit([("one.png", data), ("two.png", data)])
    assert statuses(finish(lib, job.id)) == ["ingested", "unchanged"]


def test_ingest_hooks_report_progress_and_drop_cancelled_points(lib, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    datas = [png(500 + i) for i in range(3)]
    for i, data in enumerate(datas):
        (folder / f"{i}.png").write_bytes(data)
    progress, asked = [], []

    def cancelled(pid: str) -> bool:
        asked.append((pid, lib.write_lock.locked()))
        return pid == id_of(datas[1])

    report = lib.ingest(
        [folder], hooks=IngestHooks(on_progress=lambda *p: progress.append(p), cancelled=cancelled)
    )
    assert progress and progress[-1] == (3, 3)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress) and all(f == 3 for _, f in progress)
    assert sorted(asked) == sorted((id_of(d), True) for d in datas)  # asked once each, under write_lock
    assert report.cancelled == 1 and report.ingested == 2
    assert set(lib.store.retrieve([id_of(d) for d in datas])) == {id_of(datas[0]), id_of(datas[2])}


def test_ingest_of_the_uploads_folder_is_harmless(lib):
    data = png(600)
    job = lib.jobs.submit([("a.png", data)])
    first = lib.ingest([lib.upload_dir])  # `adsearch ingest <db>/uploads` while the server is stopped
    assert first.ingested == 1
    assert statuses(finish(lib, job.id)) == ["unchanged"]  # the job then finds it stored
    again = lib.ingest([lib.upload_dir])
    assert again.ingested == 0 and again.unchanged == 1 and not again.failed
    assert lib.store.count() == 1 and uploads(lib) == {f"{sha_of(data)}.png"}
    assert lib.get(id_of(data))["paths"] == [str(lib.upload_dir / f"{sha_of(data)}.png")]


def test_a_restart_keeps_the_uploads_of_a_relative_db(tmp_path, settings, encoders, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = png(700)
    with open_library(settings, encoders, Path("db")) as first:
        job = first.jobs.submit([("a.png", data)])
        assert statuses(finish(first, job.id)) == ["ingested"]
    with open_library(settings, encoders, Path("db")) as second:
        second.jobs.start()
        assert uploads(second) == {f"{sha_of(data)}.png"}
        assert second.original(id_of(data)) == data


def test_wait_returns_when_the_job_is_interrupted(tmp_path, settings, encoders):
    db = tmp_path / "db"
    with EdgeStore(db, settings.collection) as store:  # vectors of a size the models do not give
        store.ensure_collection({"image": 4, "text": 4})
    with open_library(settings, encoders, db) as library:
        library.jobs.start()
        job = library.jobs.submit([("a.png", png(800))])
        returned = []  # wait() without a timeout returns only when woken by the job's end
        waiting = threading.Thread(target=lambda: returned.append(library.jobs.wait(job.id)), daemon=True)
        waiting.start()
        waiting.join(120)  # a liveness bound, not a speed: a wait nobody wakes never returns
        assert returned, "wait() was not woken when the job was interrupted"
        waited = returned[0]
        assert waited.status == "interrupted" and "StoreError" in waited.error


def test_a_job_submitted_before_start_runs_once_and_its_object_follows_it(lib):
    job = lib.jobs.submit([("a.png", png(900))])
    lib.jobs.start()
    queued = list(lib.jobs._queue).count(job.id)
    waited = lib.jobs.wait(job.id, 180)
    assert waited.status == "done"
    assert waited is job and job.status == "done" and queued == 1


def lock_is_free(lib) -> bool:
    """Whether another thread can take the jobs lock right now (asked without waiting)."""
    took = []

    def probe() -> None:
        if lib.jobs._lock.acquire(blocking=False):
            lib.jobs._lock.release()
            took.append(True)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return bool(took)


def test_an_upload_is_decoded_and_written_outside_the_jobs_lock(lib, monkeypatch):
    """Issue 21 item 12: a 20-file upload of big images held the jobs lock while it decoded and
    fsync'd them, so GET /api/jobs waited. Each decode and each durable write now happens with the
    lock free; the job is the same."""
    import engine.jobs.journal as journal
    import engine.jobs.uploads as jobs

    moments = []

    def probing(kind: str, real):
        def call(*args, **kwargs):
            moments.append((kind, lock_is_free(lib)))
            return real(*args, **kwargs)

        return call

    for name in ("check_image", "decode_image"):  # decode_image: what submit used before
        if hasattr(jobs, name):
            monkeypatch.setattr(jobs, name, probing("decode", getattr(jobs, name)))
    monkeypatch.setattr(journal, "write_durably", probing("write", journal.write_durably))
    first, second = png(1100), png(1101)
    job = lib.jobs.submit(
        [("a.png", first), ("bad.png", b"GIF89a junk"), ("b.png", second), ("a2.png", first)]
    )
    assert [kind for kind, _ in moments].count("decode") == 4
    assert [kind for kind, _ in moments].count("write") == 3  # two new upload files and the journal
    assert all(free for _, free in moments), moments
    assert statuses(job) == ["pending", "failed", "pending", "pending"] and job.status == "queued"
    assert uploads(lib) == {f"{sha_of(first)}.png", f"{sha_of(second)}.png"}
    assert lib.jobs.list() == [job] and list(lib.jobs._queue) == [job.id] and not lib.jobs._saving
    assert json.loads((lib.jobs.journal_dir / f"{job.id}.json").read_text())["files"][1]["status"] == "failed"


def test_a_delete_while_an_upload_is_saved_keeps_its_file(lib, monkeypatch):
    """The same bytes uploaded while a DELETE releases the image's files: the file being saved for
    the new upload stays (the upload is accepted after the DELETE, so it adds the image again)."""
    import engine.jobs.journal as jobs

    data = png(1102)
    path = lib.upload_dir / f"{sha_of(data)}.png"
    released = []
    real_write = jobs.write_durably

    def write_then_release(target, content):
        real_write(target, content)
        if target == path:
            released.extend(lib.jobs.release([str(path)]))  # what DELETE does with the image's paths

    monkeypatch.setattr(jobs, "write_durably", write_then_release)
    job = lib.jobs.submit([("a.png", data)])
    assert released == [] and path.is_file() and statuses(job) == ["pending"]


# --------------------------------------------------------------------------- over HTTP


def test_get_jobs_answers_while_an_upload_is_being_decoded(api_server, monkeypatch):
    """GET /api/jobs is answered while the decode of an upload is still under way (it used to wait
    for the jobs lock, held through every decode and fsync of the upload)."""
    import engine.jobs.uploads as jobs

    decoding, finish_decoding = threading.Event(), threading.Event()

    def held_decode(*args, **kwargs):
        decoding.set()
        finish_decoding.wait(120)
        raise ImageError("refused by the test")  # nothing reaches the shared library

    for name in ("check_image", "decode_image"):
        monkeypatch.setattr(jobs, name, held_decode, raising=False)
    answers = {}

    def upload() -> None:
        with httpx.Client(base_url=api_server, timeout=180) as client:
            answers["upload"] = client.post(
                "/api/images", files=[("files", ("big.png", png(1103), "image/png"))]
            )

    uploading = threading.Thread(target=upload)
    uploading.start()
    try:
        assert decoding.wait(120), "the upload never reached its decode"
        with httpx.Client(base_url=api_server, timeout=60) as client:
            listed = client.get("/api/jobs")  # before the decode ends: it must not need the jobs lock
        assert not finish_decoding.is_set()
    finally:
        finish_decoding.set()
        uploading.join(180)
    assert listed.status_code == 200 and "jobs" in listed.json()
    accepted = answers["upload"]
    assert accepted.status_code == 202 and accepted.json()["results"][0]["status"] == "failed"


def test_upload_over_http_is_accepted_at_once_then_followed_to_done(api_server, api_library):
    first, second = png(1000), png(1001)
    with httpx.Client(base_url=api_server, timeout=180) as http:
        before = http.get("/health").json()["images"]
        accepted = http.post("/api/images", files=[("files", ("first.png", first, "image/png"))])
        assert accepted.status_code == 202  # accepted before it is ingested: its file is still pending
        job = accepted.json()
        assert accepted.headers["location"] == job["url"] == f"/api/jobs/{job['id']}"
        assert job["status"] in ("queued", "running") and job["results"][0]["status"] == "pending"
        waited = http.post(
            "/api/images?wait=true",
            files=[("files", ("second.png", second, "image/png")), ("files", ("x.png", b"GIF89a junk"))],
        )
        assert waited.status_code == 200 and waited.headers["location"] == waited.json()["url"]
        body = waited.json()
        assert body["status"] == "done" and [r["status"] for r in body["results"]] == ["ingested", "failed"]
        assert body["results"][1]["error"] and body["progress"] == {"done": 2, "total": 2}
        # one job at a time, in order: the earlier job is done once the later one is
        status = http.get(job["url"]).json()
        assert status["status"] == "done" and status["results"][0] == {
            "name": "first.png", "status": "ingested", "id": id_of(first), "error": None,
        }  # fmt: skip
        listed = [j["id"] for j in http.get("/api/jobs").json()["jobs"]]
        assert listed.index(body["id"]) < listed.index(job["id"])  # newest first
        assert http.get("/health").json()["images"] == before + 2
        assert http.get(f"/api/jobs/{'0' * 32}").status_code == 404
        assert http.get("/api/jobs/not-a-job").status_code == 422
        for data in (first, second):  # leave the shared library as it was
            assert http.delete(f"/api/images/{id_of(data)}").json()["deleted"]
        assert http.get("/health").json()["images"] == before
