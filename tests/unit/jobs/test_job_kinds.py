"""Job kinds (issue 22): the durable queue runs any registered kind, not only uploads. Toy kinds
declared and registered here alone: one counts in steps the test hands out (so a test can hold a job
mid-run, read its progress, or drop the run as a crash would), one reads the library it runs in."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from engine import jobs
from engine.jobs import Job, JobKind, JobQueue, UploadJob
from engine.library import Library

TOY = "toy-count"
PATIENCE = 30  # seconds: a liveness bound, not a speed


@dataclass(kw_only=True)
class CountJob(Job):
    """Counts 1..steps, one step per permit; what it counted is journaled after each step."""

    kind: str = TOY
    steps: int
    counted: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.total = self.steps

    def public(self) -> dict:
        return {**super().public(), "counted": list(self.counted)}


class Counter:
    """The count kind's host: permits for steps, a tally of the steps this process ran, and a switch
    that drops the run (what a crash, or the store closing under a job, does)."""

    def __init__(self) -> None:
        self.permits = threading.Semaphore(0)
        self.tally: list[int] = []
        self.crash = threading.Event()
        self.left = threading.Event()  # the run has returned or raised


class CountKind(JobKind):
    name = TOY
    job_type = CountJob

    def begin(self, job: CountJob, queue) -> int:
        return len(job.counted)  # a rerun goes on from its last checkpoint

    def run(self, job: CountJob, queue, progress) -> None:
        host: Counter = queue.host
        try:
            for step in range(len(job.counted) + 1, job.steps + 1):
                progress(step - 1, job.steps)
                while not host.permits.acquire(timeout=0.02):
                    if host.crash.is_set():
                        raise RuntimeError("the process died")
                with queue.lock:
                    job.counted.append(step)
                    queue.save(job)
                host.tally.append(step)
        finally:
            host.left.set()


class Collection(Protocol):
    """All the census kind needs of its host."""

    def exists(self) -> bool: ...


@dataclass(kw_only=True)
class CensusJob(Job):
    kind: str = "toy-census"
    collection_exists: bool | None = None


class CensusKind(JobKind):
    """Asks its host (a Library, seen through `Collection`) whether the collection exists."""

    name = "toy-census"
    job_type = CensusJob

    def run(self, job: CensusJob, queue, progress) -> None:
        host: Collection = queue.host
        with queue.lock:
            job.collection_exists = host.exists()


@pytest.fixture
def toy_kinds():
    jobs.register(CountKind())
    jobs.register(CensusKind())
    yield
    jobs.unregister(TOY)
    jobs.unregister("toy-census")


@pytest.fixture
def queues():
    """Job queues a test opens (stopped at the end)."""
    opened: list[JobQueue] = []

    def open_queue(host, folder: Path) -> JobQueue:
        opened.append(JobQueue(host, folder))
        return opened[-1]

    yield open_queue
    for queue in opened:
        queue.stop()


def until(read, holds, timeout: float = PATIENCE):
    """The first value of `read()` for which `holds` is true (AssertionError at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if holds(value):
            return value
        assert time.monotonic() < deadline, f"still {value}"
        time.sleep(0.01)


def journal_of(folder: Path, job_id: str) -> dict:
    return json.loads((folder / f"{job_id}.json").read_text())


def test_a_toy_kind_runs_in_the_background_and_its_progress_shows_while_it_runs(toy_kinds, queues, tmp_path):
    host, folder = Counter(), tmp_path / "jobs"
    queue = queues(host, folder)
    queue.start()
    job = queue.add(CountJob(steps=3))
    assert host.tally == [] and journal_of(folder, job.id)["kind"] == TOY  # accepted, not yet run
    host.permits.release()
    running = until(lambda: queue.get(job.id).public(), lambda p: p["progress"]["done"] == 1)
    assert running["status"] == "running" and running["progress"] == {"done": 1, "total": 3}
    assert running["counted"] == [1] and journal_of(folder, job.id)["counted"] == [1]
    host.permits.release(2)
    done = queue.wait(job.id, PATIENCE)
    assert done.status == "done" and done.public()["progress"] == {"done": 3, "total": 3}
    assert done.counted == host.tally == [1, 2, 3]
    assert journal_of(folder, job.id) == done.record() and done.record()["status"] == "done"
    assert queue.list() == [job]


def test_a_job_cut_short_by_a_crash_goes_on_from_its_checkpoint_after_a_restart(toy_kinds, queues, tmp_path):
    folder, before = tmp_path / "jobs", Counter()
    first = queues(before, folder)
    first.start()
    job = first.add(CountJob(steps=3))
    before.permits.release()
    until(lambda: first.get(job.id).done, lambda done: done == 1)
    first.stop(timeout=0)  # what closing the library does first; the run is still in its second step
    before.crash.set()
    assert before.left.wait(PATIENCE)
    assert journal_of(folder, job.id)["status"] == "running"  # the journal holds the unfinished job

    after = Counter()
    after.permits.release(5)
    second = queues(after, folder)
    second.start()
    done = second.wait(job.id, PATIENCE)
    assert done is not job and done.status == "done" and done.error is None
    assert done.counted == [1, 2, 3] and after.tally == [2, 3]  # step 1 is not counted twice
    assert journal_of(folder, job.id)["status"] == "done"


def test_a_job_journaled_but_never_run_runs_at_the_next_start(toy_kinds, queues, tmp_path):
    folder = tmp_path / "jobs"
    job = queues(Counter(), folder).add(CountJob(steps=2))  # its process died before starting a runner
    host = Counter()
    host.permits.release(2)
    queue = queues(host, folder)
    queue.start()
    assert queue.wait(job.id, PATIENCE).counted == host.tally == [1, 2]


def test_a_journaled_job_of_an_unknown_kind_says_why_it_does_not_run_and_is_kept(queues, tmp_path):
    folder = tmp_path / "jobs"
    folder.mkdir()
    job = CountJob(steps=2)  # journaled by a process that had the kind registered
    path = folder / f"{job.id}.json"
    path.write_text(json.dumps(job.record()))
    journaled = path.read_bytes()

    queue = queues(Counter(), folder)
    queue.start()  # no crash
    stranded = queue.wait(job.id, PATIENCE)
    assert stranded.status == "interrupted" and stranded.kind == TOY
    assert stranded.error.startswith(f"unknown job kind {TOY!r}; known: ") and "upload" in stranded.error
    assert stranded.public()["status"] == "interrupted" and queue.list() == [stranded]
    queue.stop()
    assert path.read_bytes() == journaled  # nothing of the job is lost

    jobs.register(CountKind())  # a later process that knows the kind runs it
    try:
        host = Counter()
        host.permits.release(2)
        later = queues(host, folder)
        later.start()
        assert later.wait(job.id, PATIENCE).counted == [1, 2]
    finally:
        jobs.unregister(TOY)


def test_a_job_whose_kind_is_gone_when_it_runs_is_interrupted_with_the_reason(queues, tmp_path):
    jobs.register(CountKind())
    try:
        queue = queues(Counter(), tmp_path / "jobs")
        job = queue.add(CountJob(steps=1))
    finally:
        jobs.unregister(TOY)
    queue.start()
    stopped = queue.wait(job.id, PATIENCE)
    assert stopped.status == "interrupted"
    assert stopped.error.startswith(f"ValueError: unknown job kind {TOY!r}; known: ")
    assert journal_of(tmp_path / "jobs", job.id)["steps"] == 1  # journaled whole, to run again later


def test_the_library_runs_other_kinds_beside_uploads_and_reads_old_upload_journals(
    toy_kinds, tmp_path, settings
):
    db = tmp_path / "db"
    (db / "jobs").mkdir(parents=True)
    old = {  # an upload journaled before jobs had kinds
        "id": "f" * 32, "status": "done", "created_at": "2025-01-01T00:00:00.000+00:00",
        "started_at": None, "finished_at": "2025-01-01T00:00:01.000+00:00", "error": None,
        "stored_before": None, "files": [
            {"name": "notes.txt", "status": "failed", "id": None, "error": "not an image", "stored": None}
        ],
    }  # fmt: skip
    (db / "jobs" / f"{old['id']}.json").write_text(json.dumps(old))
    with Library(settings.with_overrides(db=db)) as lib:
        lib.jobs.start()
        upload = lib.jobs.get(old["id"])
        assert isinstance(upload, UploadJob) and upload.kind == "upload"
        assert upload.public()["counts"]["failed"] == 1 and upload.public()["results"] == [
            {"name": "notes.txt", "status": "failed", "id": None, "error": "not an image"}
        ]
        census = lib.jobs.wait(lib.jobs.add(CensusJob()).id, PATIENCE)
        assert census.status == "done" and census.collection_exists is False
        assert lib.jobs.list() == [census, upload]


def test_a_kind_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        jobs.register(jobs.job_kind("upload"))
    with pytest.raises(ValueError, match="unknown job kind 'nope'"):
        jobs.job_kind("nope")
    assert "upload" in jobs.kind_names() and TOY not in jobs.kind_names()  # the tests' kinds are gone
