"""The durable queue: jobs of any registered kind, journaled, run one at a time by one thread,
recovered at start."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from engine.errors import NotFound
from engine.jobs.base import UNFINISHED, Job, now
from engine.jobs.journal import Journal
from engine.jobs.registry import job_kind, kind_names, load_job
from engine.observers import Observers

log = logging.getLogger(__name__)
# one structured line as each job starts and ends (extra fields: event, job_id, kind, status, ...),
# rendered by whoever configures the "adsearch" loggers (the server: api/access_log.py)
jobs_log = logging.getLogger("adsearch.jobs")

KEEP_FINISHED = 200  # finished jobs kept in the journal (older ones are pruned at start)


class JobQueue:
    """Jobs of one owner (`host`), journaled in `journal_dir`: add, follow, wait, and the runner.
    A job is accepted once journaled; `start()` runs every unfinished one again."""

    NOT_FOUND = "no job {}"  # the answer to an unknown job id

    def __init__(self, host: Any, journal_dir: Path):
        self.host = host
        self.journal_dir = journal_dir
        self._journal = Journal(journal_dir)
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._lock = threading.Condition()  # reentrant: a kind may call the queue with it held
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._recovered = False
        self.finished = Observers()  # called (job, what the run did or {}, seconds) as a run ends

    @property
    def lock(self) -> threading.Condition:
        return self._lock

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load the journal and finish unfinished jobs in the background. Idempotent."""
        with self._lock:
            if self._thread is not None:
                return
            if not self._recovered:  # once per process: after that, memory is the truth
                self._recover()
                self._recovered = True
            self._stopping = False
            self._thread = threading.Thread(target=self._run_forever, name="jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the runner to stop after its current job; a job cut short runs again at the next start."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------ clients

    def add(self, job: Job) -> Job:
        """Accept a job: journal it (outside the lock: no one else knows it yet), then queue it if it
        is queued. Returns the job the queue follows (the journal's, if `start()` read it meanwhile)."""
        self._journal.write(job)
        with self._lock:
            known = self._jobs.setdefault(job.id, job)
            if known is job and job.status == "queued":
                self._queue.append(job.id)
                self._lock.notify_all()
            return known

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(self.NOT_FOUND.format(job_id))
        return job

    def list(self) -> list[Job]:
        """Every job the journal keeps, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is done or interrupted (or `timeout` seconds pass); return it."""
        job = self.get(job_id)
        with self._lock:
            self._lock.wait_for(lambda: job.status not in ("queued", "running") or self._stopping, timeout)
        return job

    def save(self, job: Job) -> None:
        """Journal the job as it is now."""
        with self._lock:
            self._journal.write(job)

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        """Load the journal; requeue unfinished jobs of known kinds (oldest first); prune old ones."""
        jobs = self._journal.read(load_job)
        finished = [j for j in jobs if j.status == "done"]
        for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            self._journal.remove(old)
            jobs.remove(old)
        known = kind_names()
        for job in jobs:
            if job.id in self._jobs:
                continue  # added by this process before start(): memory already has it
            self._jobs[job.id] = job
            if job.status in UNFINISHED and job.kind in known:
                job.status = "queued"
                self._queue.append(job.id)
        self._recovered_jobs()

    def _recovered_jobs(self) -> None:
        """Called once, with the lock held, after the journal is read (a subclass tidies up here)."""

    # ------------------------------------------------------------------ the runner

    def _run_forever(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._queue or self._stopping)
                if self._stopping:
                    return
                job = self._jobs[self._queue[0]]
            started = time.perf_counter()
            try:
                self._run(job)
            except Exception as exc:  # noqa: BLE001 (the runner must outlive one bad job)
                with self._lock:
                    if self._stopping:
                        return  # the store was closed under us: the journal still says running
                    log.error("%s job %s stopped: %s: %s (it runs again at the next start)",
                              job.kind, job.id, type(exc).__name__, exc)  # fmt: skip
                    job.status, job.error = "interrupted", f"{type(exc).__name__}: {exc}"
                    self._queue.popleft()
                    self._journal.write(job)
                    self._lock.notify_all()
                self._ended(job, {}, time.perf_counter() - started)
                continue
            with self._lock:
                self._queue.popleft()

    def _run(self, job: Job) -> None:
        """Run one job through its kind: begin and journal it as running, run it, journal it done."""
        kind = job_kind(job.kind)
        with self._lock:
            already = kind.begin(job, self)
            job.status, job.started_at, job.error, job.done = "running", now(), None, already
            self._journal.write(job)
        jobs_log.info("job %s started", job.id, extra={
            "event": "job", "job_id": job.id, "kind": job.kind, "status": "running", "done": job.done,
            "total": job.total,
        })  # fmt: skip
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            job.total, job.done = total, done

        outcome = kind.run(job, self, progress) or {}
        with self._lock:
            job.status, job.finished_at, job.done = "done", now(), job.total
            self._journal.write(job)
            self._lock.notify_all()
        self._ended(job, outcome, time.perf_counter() - started)

    def _ended(self, job: Job, outcome: dict[str, int], seconds: float) -> None:
        """Log the job's end (done or interrupted) in one line and tell the `finished` observers."""
        fields = {"event": "job", "job_id": job.id, "kind": job.kind, "status": job.status,
                  "duration_ms": round(seconds * 1000, 1), "total": job.total, **outcome}  # fmt: skip
        if job.error:
            fields["error"] = job.error
        jobs_log.log(logging.INFO if job.status == "done" else logging.ERROR, "job %s %s", job.id, job.status,
                     extra=fields)  # fmt: skip
        self.finished(job, outcome, seconds)
