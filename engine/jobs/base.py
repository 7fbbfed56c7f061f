"""What every job is (`Job`: state, times, progress) and what every job kind provides (`JobKind`)."""

from __future__ import annotations

import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

UPLOAD = "upload"  # the uploads kind; journals written before jobs had kinds hold uploads
UNFINISHED = ("queued", "running", "interrupted")  # states a job is run again from at the next start
PROGRESS_FIELDS = ("done", "total")  # kept in memory only, never journaled

Progress = Callable[[int, int], None]  # progress(done, total), in steps of the job's own choosing


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(kw_only=True)
class Job:
    """A job of any kind: queued -> running -> done (interrupted: an unexpected error stopped the
    run, or its kind is not registered here; it runs again at the next start). A kind keeps what its
    jobs need in a subclass; every field but the progress is journaled."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    kind: str
    status: str = "queued"
    created_at: str = field(default_factory=now)
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None  # why the last run stopped early (it is run again at the next start)
    done: int = 0  # steps finished in the current run
    total: int = 0

    def public(self) -> dict:
        """What the API shows: state and progress (a kind's subclass adds its results)."""
        finished = self.status == "done"
        return {
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "progress": {"done": self.total if finished else self.done, "total": self.total},
        }

    def record(self) -> dict:
        """What the journal keeps."""
        return {k: v for k, v in asdict(self).items() if k not in PROGRESS_FIELDS}

    @classmethod
    def from_record(cls, data: dict) -> Job:
        return cls(**data)


class QueueView(Protocol):
    """What a job kind may use of the queue its job runs in."""

    host: Any  # the queue's owner (a Library): each kind names what it needs of it in a Protocol
    lock: threading.Condition  # held while a job's record changes, so that readers see it whole

    def save(self, job: Job) -> None:
        """Journal the job as it is now (a kind that checkpoints a long run)."""


class JobKind(ABC):
    """A kind of job as the registry (engine.jobs) knows it: its name, the class of its records, and
    how one job runs. A kind keeps no state per queue: what a run needs comes through the queue."""

    name: ClassVar[str]
    job_type: ClassVar[type[Job]] = Job

    def load(self, record: dict) -> Job:
        """The job a journal record describes (TypeError, KeyError or ValueError when malformed)."""
        return self.job_type.from_record(record)

    def begin(self, job: Job, queue: QueueView) -> int:
        """Called with the queue's lock held as a run starts, before the job is journaled as running:
        record what a rerun must see the same way; return the steps already done."""
        return 0

    @abstractmethod
    def run(self, job: Job, queue: QueueView, progress: Progress) -> dict[str, int] | None:
        """Do the job, reporting `progress(done, total)`; change the job's fields with `queue.lock`
        held. An exception interrupts the job: it runs again at the next start. May return what
        this run did as counts (uploads: files ingested, unchanged, failed, cancelled), for the
        job's log line and the queue's `finished` observers."""
