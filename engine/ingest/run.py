"""What the steps of one ingest run (engine.ingest.triage, engine.ingest.writer) share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.ingest.report import IngestHooks, IngestReport, Progress
from engine.store import Store


@dataclass
class Run:
    """One run's store (and its `db` folder), the pipeline that makes its points, its progress and
    the caller's hooks; and for each point it (re)processes, its `paths` (those stored first) and the
    `metadata` its paths' rows give it: the triage finds them, the writer writes them."""

    db: Path
    store: Store
    pipeline: dict
    progress: Progress
    hooks: IngestHooks
    paths: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, dict] = field(default_factory=dict)

    @property
    def report(self) -> IngestReport:
        return self.progress.report
