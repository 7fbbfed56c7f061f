"""Upload jobs: uploaded files are stored durably and journaled, then ingested in the background,
one job at a time, by one thread of the serving process.

The uploads folder plus the journal (`<db>/jobs/<job id>.json`, each written atomically and fsync'd)
is the durable queue. An upload is *accepted* once its files and its journal entry are on disk; after
a crash, `start()` runs every unfinished job again (ingest is idempotent, so what was written before
the crash is skipped) and removes upload files that no job and no stored image accounts for: files
saved by a request that crashed before it was accepted, and `.part` leftovers.

Rules, documented in the README: a DELETE of an image cancels every pending upload of it accepted
before the DELETE (an upload accepted after it adds the image again); the same bytes uploaded twice,
in one job or two, make one image (the later copy reports `unchanged`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from engine.errors import ImageError, NotFound
from engine.ingest.ingestor import IngestHooks
from engine.media.images import check_image
from engine.store import point_id

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.ingest.ingestor import IngestReport
    from engine.store import Store

log = logging.getLogger(__name__)

FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp", "GIF": ".gif", "TIFF": ".tif"}
UNFINISHED = ("queued", "running", "interrupted")
KEEP_FINISHED = 200  # finished jobs kept in the journal (older ones are pruned at start)
_UPLOAD_NAME = re.compile(r"^[0-9a-f]{64}\.[a-z]+$")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class JobFile:
    """One uploaded file: pending until its job has run, then ingested | unchanged | failed | cancelled."""

    name: str
    status: str = "pending"
    id: str | None = None
    error: str | None = None
    stored: str | None = None  # where the upload was saved (server side; not shown to clients)

    def public(self) -> dict:
        return {"name": self.name, "status": self.status, "id": self.id, "error": self.error}


@dataclass
class Job:
    """An accepted upload: queued -> running -> done (interrupted: an unexpected error stopped the
    run; it runs again at the next start)."""

    id: str
    files: list[JobFile]
    status: str = "queued"
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None  # why the last run stopped early (it is run again at the next start)
    stored_before: list[str] | None = None  # ids already in the collection when the job first ran
    done: int = 0  # files finished in the current run (progress; not journaled)
    total: int = 0

    def counts(self) -> dict[str, int]:
        states = ("pending", "ingested", "unchanged", "failed", "cancelled")
        return {s: sum(f.status == s for f in self.files) for s in states}

    def public(self) -> dict:
        """What the API shows: state, progress, counts and one result per uploaded file."""
        finished = self.status == "done"
        return {
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "progress": {"done": self.total if finished else self.done, "total": self.total},
            "counts": self.counts(),
            "results": [f.public() for f in self.files],
        }

    def record(self) -> dict:
        """What the journal keeps."""
        return {k: v for k, v in asdict(self).items() if k not in ("done", "total")}

    @classmethod
    def from_record(cls, data: dict) -> Job:
        files = [JobFile(**f) for f in data.pop("files")]
        return cls(files=files, **data)


def write_durably(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that it survives a crash or power loss: a temporary file, fsync'd,
    renamed over the target, and the folder fsync'd."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class UploadHost(Protocol):
    """What the upload queue needs of the collection it feeds (engine.library.Library is one): its
    folders, settings and store, and an ingest that runs on this machine."""

    data_dir: Path
    upload_dir: Path
    settings: Settings
    store: Store

    def ingest(self, paths: list[str], on_error: Callable[[str, str], None], hooks: IngestHooks,
               here: bool) -> IngestReport: ...  # fmt: skip


class UploadJobs:
    """The upload queue of one collection: submit, follow, cancel, and the background runner."""

    def __init__(self, host: UploadHost):
        self.host = host
        self.journal_dir = host.data_dir / "jobs"
        self.upload_dir = host.upload_dir
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._lock = threading.Condition()
        self._saving: Counter[str] = Counter()  # upload files a `submit` is saving (not yet in a job)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._recovered = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load the journal, finish unfinished jobs in the background, remove orphaned uploads.
        Idempotent."""
        with self._lock:
            if self._thread is not None:
                return
            if not self._recovered:  # once per process: after that, memory is the truth
                self._recover()
                self._recovered = True
            self._stopping = False
            self._thread = threading.Thread(target=self._run_forever, name="upload-jobs", daemon=True)
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

    def submit(self, files: list[tuple[str, bytes]]) -> Job:
        """Accept an upload: files that decode are saved durably, the job is journaled and queued;
        files that do not decode are failed at once with the reason.

        Decoding and the durable writes (fsync) happen before the jobs lock is taken, so that listing
        or following jobs never waits for them; the upload files are marked as being saved meanwhile,
        so that a concurrent DELETE of the same image cannot remove them (`_unclaimed`)."""
        entries = [self._check(name, data) for name, data in files]
        job = Job(uuid.uuid4().hex, entries)
        job.total = len(entries)
        if not any(f.status == "pending" for f in entries):
            job.status, job.finished_at = "done", _now()
        saving = [f.stored for f in entries if f.stored]
        with self._lock:
            self._saving.update(saving)
        try:
            for entry, (_, data) in zip(entries, files, strict=True):
                target = Path(entry.stored) if entry.stored else None
                if target is not None and not target.exists():
                    self.upload_dir.mkdir(parents=True, exist_ok=True)
                    write_durably(target, data)
            self._journal(job)  # no one else knows the job yet: written outside the lock too
            with self._lock:
                known = self._jobs.setdefault(job.id, job)  # `start()` may have read it from the journal
                if known is job and job.status == "queued":
                    self._queue.append(job.id)
                    self._lock.notify_all()
                return known
        finally:
            with self._lock:
                self._saving.subtract(saving)
                self._saving = +self._saving  # drop the zero counts

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no upload job {job_id}")
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

    def cancel(self, image_id: str) -> list[str]:
        """Cancel every pending upload of `image_id`; the ids of the jobs that had one. The caller
        holds the library's write lock, so a running job cannot write the image meanwhile, and
        then calls `release` for the image's files."""
        touched = []
        with self._lock:
            for job in self._jobs.values():
                hits = [f for f in job.files if f.id == image_id and f.status == "pending"]
                for entry in hits:
                    entry.status, entry.error = "cancelled", "deleted before it was ingested"
                if hits:
                    touched.append(job.id)
                    self._journal(job)
        return touched

    # ------------------------------------------------------------------ saving and the journal

    def _check(self, name: str, data: bytes) -> JobFile:
        """The entry of one uploaded file: pending with the path it is to be saved at when it decodes
        within the pixel limit, else failed with the reason (nothing is written here)."""
        try:
            fmt = check_image(data, self.host.settings.max_image_pixels)
        except ImageError as exc:
            return JobFile(name, "failed", error=str(exc))
        sha = hashlib.sha256(data).hexdigest()
        target = self.upload_dir / f"{sha}{FORMAT_SUFFIX.get(fmt, '.img')}"
        return JobFile(name, "pending", id=point_id(sha), stored=str(target))

    def _journal(self, job: Job) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        write_durably(self.journal_dir / f"{job.id}.json", json.dumps(job.record()).encode())

    def _recover(self) -> None:
        """Load the journal; requeue unfinished jobs (oldest first); prune old ones; sweep orphans."""
        jobs = []
        for path in self.journal_dir.glob(".*.part") if self.journal_dir.is_dir() else []:
            path.unlink(missing_ok=True)  # a journal write cut short: its previous version stands
        for path in self.journal_dir.glob("*.json") if self.journal_dir.is_dir() else []:
            try:
                jobs.append(Job.from_record(json.loads(path.read_text())))
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("upload journal %s is unreadable (%s); set aside as .bad", path.name, exc)
                path.replace(path.with_suffix(".bad"))
        jobs.sort(key=lambda j: j.created_at)
        finished = [j for j in jobs if j.status == "done"]
        for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            (self.journal_dir / f"{old.id}.json").unlink(missing_ok=True)
            jobs.remove(old)
        for job in jobs:
            if job.id in self._jobs:
                continue  # submitted by this process before start(): memory already has it
            job.total = len(job.files)
            self._jobs[job.id] = job
            if job.status in UNFINISHED:
                job.status = "queued"
                self._queue.append(job.id)
        self._sweep_orphans()

    def _sweep_orphans(self) -> None:
        """Remove upload files that no unfinished job and no stored image accounts for."""
        if not self.upload_dir.is_dir():
            return
        for path in self.upload_dir.iterdir():
            if path.name.startswith(".") and path.name.endswith(".part"):
                path.unlink(missing_ok=True)
            elif _UPLOAD_NAME.match(path.name) and self._unclaimed(path):
                log.warning("removed upload %s: no accepted job or stored image refers to it", path.name)
                path.unlink(missing_ok=True)

    def _unclaimed(self, path: Path) -> bool:
        """No pending job entry and no stored image refers to this upload file."""
        name = str(path)
        if name in self._saving:
            return False
        if any(f.stored == name and f.status == "pending" for j in self._jobs.values() for f in j.files):
            return False
        pid = point_id(path.name.split(".", 1)[0])
        payload = self.host.store.retrieve([pid]).get(pid)
        return not (payload and name in payload.get("paths", []))

    # ------------------------------------------------------------------ the runner

    def _run_forever(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._queue or self._stopping)
                if self._stopping:
                    return
                job = self._jobs[self._queue[0]]
            try:
                self._run(job)
            except Exception as exc:  # noqa: BLE001 (the runner must outlive one bad job)
                with self._lock:
                    if self._stopping:
                        return  # the store was closed under us: the journal still says running
                    log.error("upload job %s stopped: %s: %s (it runs again at the next start)",
                              job.id, type(exc).__name__, exc)  # fmt: skip
                    job.status, job.error = "interrupted", f"{type(exc).__name__}: {exc}"
                    self._queue.popleft()
                    self._journal(job)
                    self._lock.notify_all()
                continue
            with self._lock:
                self._queue.popleft()

    def _run(self, job: Job) -> None:
        """Ingest the job's pending files, then record each file's result and release the uploads
        that ended up in no image (failed or cancelled)."""
        lib = self.host
        with self._lock:
            pending = [f for f in job.files if f.status == "pending"]
            if job.stored_before is None:  # first run; a rerun after a crash keeps the first answer
                job.stored_before = sorted(lib.store.retrieve([f.id for f in pending]))
            job.status, job.started_at, job.error = "running", _now(), None
            job.done = len(job.files) - len(pending)
            self._journal(job)
        seen = set(job.stored_before)  # stored before the job, then as each entry is reported
        failures: dict[str, str] = {}
        paths = list(dict.fromkeys(f.stored for f in pending))
        hooks = IngestHooks(
            on_progress=self._progress(job, len(job.files) - len(pending), len(paths), len(pending)),
            cancelled=lambda pid: self._cancelled(job, pid),
        )
        # here: uploads live in this server's folder, which a cluster's workers cannot read
        lib.ingest(
            paths, on_error=lambda path, reason: failures.__setitem__(path, reason), hooks=hooks, here=True
        )
        with self._lock:
            for entry in pending:
                if entry.status != "pending":
                    continue  # cancelled meanwhile
                entry.error = failures.get(entry.stored)
                entry.status = "failed" if entry.error else "unchanged" if entry.id in seen else "ingested"
                seen.add(entry.id)
            for entry in job.files:
                if entry.status in ("failed", "cancelled") and entry.stored:
                    self._release(Path(entry.stored))  # ended in no image
            job.status, job.finished_at, job.done = "done", _now(), job.total
            self._journal(job)
            self._lock.notify_all()

    def _progress(self, job: Job, already: int, files: int, entries: int) -> Callable[[int, int], None]:
        """Progress in job entries from the ingest's progress in distinct files."""

        def update(done: int, found: int) -> None:
            job.done = already + (entries * min(done, files)) // max(files, 1)

        return update

    def _cancelled(self, job: Job, pid: str) -> bool:
        with self._lock:
            return any(f.id == pid and f.status == "cancelled" for f in job.files) and not any(
                f.id == pid and f.status == "pending" for f in job.files
            )

    def release(self, paths: list[str]) -> list[str]:
        """Remove those of `paths` that are upload files no pending job entry and no stored image
        refers to (any other path is left alone); the ones removed."""
        with self._lock:
            return [p for p in paths if self._release(Path(p))]

    def _release(self, path: Path) -> bool:
        if path.parent.resolve() == self.upload_dir.resolve() and path.is_file() and self._unclaimed(path):
            path.unlink(missing_ok=True)
            return True
        return False
