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
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from engine.errors import ImageError
from engine.ingest.ingestor import IngestHooks
from engine.jobs import journal
from engine.jobs.base import UPLOAD, Job, JobKind, Progress, now
from engine.jobs.queue import JobQueue
from engine.media.images import check_image
from engine.store import point_id

if TYPE_CHECKING:
    from engine.ingest.ingestor import IngestReport
    from engine.settings import Settings
    from engine.store import Store

log = logging.getLogger(__name__)

FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp", "GIF": ".gif", "TIFF": ".tif"}
FILE_STATES = ("pending", "ingested", "unchanged", "failed", "cancelled")
_UPLOAD_NAME = re.compile(r"^[0-9a-f]{64}\.[a-z]+$")


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


@dataclass(kw_only=True)
class UploadJob(Job):
    """An accepted upload: its files, each with its result; progress counts files."""

    kind: str = UPLOAD
    files: list[JobFile]
    stored_before: list[str] | None = None  # ids already in the collection when the job first ran

    def __post_init__(self) -> None:
        self.total = len(self.files)

    def counts(self) -> dict[str, int]:
        return {s: sum(f.status == s for f in self.files) for s in FILE_STATES}

    def public(self) -> dict:
        """What the API shows: state, progress, counts and one result per uploaded file."""
        return {**super().public(), "counts": self.counts(), "results": [f.public() for f in self.files]}

    @classmethod
    def from_record(cls, data: dict) -> UploadJob:
        data = dict(data)
        files = [JobFile(**f) for f in data.pop("files")]
        return cls(files=files, **data)


class UploadHost(Protocol):
    """What the upload queue needs of the collection it feeds (engine.library.Library is one): its
    folders, settings and store, and an ingest that runs on this machine."""

    data_dir: Path
    upload_dir: Path
    settings: Settings
    store: Store

    def ingest(self, paths: list[str], on_error: Callable[[str, str], None], hooks: IngestHooks,
               here: bool) -> IngestReport: ...  # fmt: skip


class UploadKind(JobKind):
    """Uploads as a job kind: ingest the job's pending files, then record each file's result and
    release the uploads that ended up in no image (failed or cancelled). Runs in an `UploadJobs`."""

    name = UPLOAD
    job_type = UploadJob

    def begin(self, job: UploadJob, queue: UploadJobs) -> int:
        if not isinstance(queue, UploadJobs):
            raise TypeError("upload jobs run in a collection's job queue (UploadJobs)")
        pending = [f for f in job.files if f.status == "pending"]
        if job.stored_before is None:  # first run; a rerun after a crash keeps the first answer
            job.stored_before = sorted(queue.host.store.retrieve([f.id for f in pending]))
        return len(job.files) - len(pending)

    def run(self, job: UploadJob, queue: UploadJobs, progress: Progress) -> dict[str, int]:
        with queue.lock:
            pending = [f for f in job.files if f.status == "pending"]
        already, paths = len(job.files) - len(pending), list(dict.fromkeys(f.stored for f in pending))

        def on_progress(done: int, found: int) -> None:  # ingest's distinct files -> the job's entries
            progress(already + (len(pending) * min(done, len(paths))) // max(len(paths), 1), len(job.files))

        failures: dict[str, str] = {}
        hooks = IngestHooks(on_progress=on_progress, cancelled=lambda pid: self._cancelled(job, queue, pid))
        # here: uploads live in this server's folder, which a cluster's workers cannot read
        queue.host.ingest(
            paths, on_error=lambda path, reason: failures.__setitem__(path, reason), hooks=hooks, here=True
        )
        seen = set(job.stored_before or ())  # stored before the job, then as each entry is reported
        with queue.lock:
            for entry in pending:
                if entry.status != "pending":
                    continue  # cancelled meanwhile
                entry.error = failures.get(entry.stored)
                entry.status = "failed" if entry.error else "unchanged" if entry.id in seen else "ingested"
                seen.add(entry.id)
            ended_in_no_image = [f.stored for f in job.files if f.status in ("failed", "cancelled")]
            queue.release([path for path in ended_in_no_image if path])
            return {state: sum(f.status == state for f in pending) for state in FILE_STATES[1:]}

    @staticmethod
    def _cancelled(job: UploadJob, queue: UploadJobs, pid: str) -> bool:
        with queue.lock:
            return any(f.id == pid and f.status == "cancelled" for f in job.files) and not any(
                f.id == pid and f.status == "pending" for f in job.files
            )


KIND = UploadKind()


class UploadJobs(JobQueue):
    """The job queue of one collection (jobs of every kind run in it) with its uploads: submit,
    cancel, release, and the sweep of orphaned upload files at start."""

    NOT_FOUND = "no upload job {}"

    def __init__(self, host: UploadHost):
        super().__init__(host, host.data_dir / "jobs")
        self.upload_dir = host.upload_dir
        self._saving: Counter[str] = Counter()  # upload files a `submit` is saving (not yet in a job)

    def submit(self, files: list[tuple[str, bytes]]) -> UploadJob:
        """Accept an upload: files that decode are saved durably, the job is journaled and queued;
        files that do not decode are failed at once with the reason.

        Decoding and the durable writes (fsync) happen before the jobs lock is taken, so that listing
        or following jobs never waits for them; the upload files are marked as being saved meanwhile,
        so that a concurrent DELETE of the same image cannot remove them (`_unclaimed`)."""
        job = UploadJob(files=[self._check(name, data) for name, data in files])
        if not any(f.status == "pending" for f in job.files):
            job.status, job.finished_at = "done", now()
        saving = [f.stored for f in job.files if f.stored]
        with self._lock:
            self._saving.update(saving)
        try:
            for entry, (_, data) in zip(job.files, files, strict=True):
                target = Path(entry.stored) if entry.stored else None
                if target is not None and not target.exists():
                    self.upload_dir.mkdir(parents=True, exist_ok=True)
                    journal.write_durably(target, data)
            return self.add(job)
        finally:
            with self._lock:
                self._saving.subtract(saving)
                self._saving = +self._saving  # drop the zero counts

    def cancel(self, image_id: str) -> list[str]:
        """Cancel every pending upload of `image_id`; the ids of the jobs that had one. The caller
        holds the library's write lock, so a running job cannot write the image meanwhile, and
        then calls `release` for the image's files."""
        touched = []
        with self._lock:
            for job in self._uploads():
                hits = [f for f in job.files if f.id == image_id and f.status == "pending"]
                for entry in hits:
                    entry.status, entry.error = "cancelled", "deleted before it was ingested"
                if hits:
                    touched.append(job.id)
                    self._journal.write(job)
        return touched

    def release(self, paths: list[str]) -> list[str]:
        """Remove those of `paths` that are upload files no pending job entry and no stored image
        refers to (any other path is left alone); the ones removed."""
        with self._lock:
            return [p for p in paths if self._release(Path(p))]

    def _uploads(self) -> Iterator[UploadJob]:
        return (job for job in self._jobs.values() if isinstance(job, UploadJob))

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

    def _recovered_jobs(self) -> None:
        """Remove upload files that no unfinished job and no stored image accounts for."""
        if not self.upload_dir.is_dir():
            return
        for path in self.upload_dir.iterdir():
            if path.name.startswith(".") and path.name.endswith(".part"):
                path.unlink(missing_ok=True)
            elif _UPLOAD_NAME.match(path.name) and self._unclaimed(path):
                log.warning("removed upload %s: no accepted job or stored image refers to it", path.name)
                path.unlink(missing_ok=True)

    def _release(self, path: Path) -> bool:
        if path.parent.resolve() == self.upload_dir.resolve() and path.is_file() and self._unclaimed(path):
            path.unlink(missing_ok=True)
            return True
        return False

    def _unclaimed(self, path: Path) -> bool:
        """No pending job entry and no stored image refers to this upload file."""
        name = str(path)
        if name in self._saving:
            return False
        if any(f.stored == name and f.status == "pending" for j in self._uploads() for f in j.files):
            return False
        pid = point_id(path.name.split(".", 1)[0])
        payload = self.host.store.retrieve([pid]).get(pid)
        return not (payload and name in payload.get("paths", []))
