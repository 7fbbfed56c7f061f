"""The journal: one JSON file per job in `<db>/jobs`, each written whole and durably or not at all."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from engine.jobs.base import Job

log = logging.getLogger(__name__)


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


class Journal:
    """The journal folder of one queue."""

    def __init__(self, folder: Path):
        self.folder = folder

    def write(self, job: Job) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_durably(self.folder / f"{job.id}.json", json.dumps(job.record()).encode())

    def remove(self, job: Job) -> None:
        (self.folder / f"{job.id}.json").unlink(missing_ok=True)

    def read(self, load: Callable[[dict], Job]) -> list[Job]:
        """Every journaled job, oldest first. A write cut short is removed (the previous version
        stands); a file that does not load is set aside as `.bad` with a warning."""
        if not self.folder.is_dir():
            return []
        for path in self.folder.glob(".*.part"):
            path.unlink(missing_ok=True)
        jobs = []
        for path in self.folder.glob("*.json"):
            try:
                jobs.append(load(json.loads(path.read_text())))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.warning("job journal %s is unreadable (%s); set aside as .bad", path.name, exc)
                path.replace(path.with_suffix(".bad"))
        return sorted(jobs, key=lambda j: j.created_at)
