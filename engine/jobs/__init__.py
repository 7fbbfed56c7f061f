"""Background jobs of any registered kind, queued durably and run one at a time; uploads are one kind.

A kind (`JobKind`: its name, its record class, how one job runs) is made known with `register`;
the built-in one is engine/jobs/uploads.py (`KIND`). base.py holds the record every job shares,
journal.py the durable journal, queue.py the runner (`JobQueue`), registry.py the kinds.
"""

from __future__ import annotations

from engine.jobs import uploads
from engine.jobs.base import Job, JobKind, Progress, QueueView
from engine.jobs.journal import write_durably
from engine.jobs.queue import JobQueue
from engine.jobs.registry import job_kind, kind_names, register, unregister
from engine.jobs.uploads import JobFile, UploadHost, UploadJob, UploadJobs

register(uploads.KIND)

__all__ = [
    "Job", "JobFile", "JobKind", "JobQueue", "Progress", "QueueView", "UploadHost", "UploadJob",
    "UploadJobs", "job_kind", "kind_names", "register", "unregister", "write_durably",
]  # fmt: skip
