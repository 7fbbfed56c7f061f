"""Writing what ingest processed: each point whole (every vector and the payload in one upsert),
a batch at a time, under the caller's write lock; a point the store refuses fails by itself."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from engine.ingest.executors import Pending, Processed
from engine.ingest.run import Run
from engine.media.images import AnalysedImage
from engine.media.sources import kept_original, write_atomically
from engine.schema import point_id
from engine.store import PointData

log = logging.getLogger(__name__)


def keep_copy(db: Path, pid: str, item: Pending) -> None:
    """A remote image's bytes kept in <db>/originals (engine.media.sources.kept_original), so showing it
    never makes the server fetch a URL; they are the hashed bytes, so the copy matches its sha256."""
    if item.data is not None:
        target = kept_original(db, pid)
        if not target.exists():
            write_atomically(target, item.data)
        item.data = None


class PointWriter:
    """Upserts processed files as whole points made by the run's pipeline, with the paths and
    metadata the triage gathered for them and what a stored point had beyond what ingest writes."""

    def __init__(self, run: Run):
        self.run = run

    def write(self, batch: list[tuple[Pending, Processed]]) -> None:
        """Upsert a batch as whole points (every vector and the payload in one write)."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")  # watches compare to the ms
        points = []
        for item, processed in batch:
            pid = point_id(item.sha256)
            points.append(
                PointData(pid, processed.vectors, self._payload(item, processed.analysed, pid, now))
            )
        start = time.perf_counter()
        with self.run.hooks.writing():
            kept = [p for p in points if not (self.run.hooks.cancelled and self.run.hooks.cancelled(p.id))]
            refused = self._upsert(kept)
        self.run.report.upsert_seconds += time.perf_counter() - start
        written = {p.id for p in kept} - {p.id for p, _ in refused}
        for (item, _), point in zip(batch, points, strict=True):
            if point.id in written:
                keep_copy(self.run.db, point.id, item)
        self.run.report.ingested += len(kept) - len(refused)
        self.run.report.cancelled += len(points) - len(kept)
        self.run.progress.advance(len(points) - len(refused))
        for point, reason in refused:
            self.run.progress.fail(self.run.paths[point.id][-1], f"not stored ({reason})")

    def _upsert(self, points: list[PointData]) -> list[tuple[PointData, str]]:
        """Write a batch; if the store refuses it, each point alone, so one point the store cannot
        take fails by itself. The points refused, with the reason; raises if the store took none."""
        try:
            self.run.store.upsert(points)
            return []
        except (ValueError, TypeError) as exc:
            if len(points) == 1:
                raise
            log.warning("the store refused a batch (%s); writing its points one by one", exc)
        refused = []
        for point in points:
            try:
                self.run.store.upsert([point])
            except (ValueError, TypeError) as exc:
                refused.append((point, f"{type(exc).__name__}: {exc}"))
        if len(refused) == len(points):
            raise ValueError(f"the store refused every point of a batch: {refused[0][1]}")
        return refused

    def _payload(self, item: Pending, analysed: AnalysedImage, pid: str, now: str) -> dict:
        """The whole payload of a (re)processed point: what ingest computes, the built-ins, the
        metadata of its paths, and what a stored point had beyond that."""
        return {
            "folder": item.folder,
            **({"file_date": item.file_date} if item.file_date else {}),  # unknown for some URLs
            **item.keep,
            **self._computed(item, analysed, pid, now),
            **self.run.metadata.get(pid, {}),
        }

    def _computed(self, item: Pending, analysed: AnalysedImage, pid: str, now: str) -> dict:
        ocr = analysed.ocr
        return {
            "paths": list(self.run.paths[pid]),
            "sha256": item.sha256,
            "bytes": item.size,
            "width": analysed.width,
            "height": analysed.height,
            "format": analysed.format,
            "ocr_text": ocr.text,
            "ocr_raw_text": ocr.raw_text,
            "ocr_words": ocr.words_as_dicts(),
            "ocr_confidence": round(ocr.confidence, 2),
            "ocr_readers": list(ocr.readers),
            "ocr_words_by_reader": ocr.words_by_reader(),
            "ocr_errors": ocr.errors,
            "has_text": bool(ocr.text),
            "pipeline": self.run.pipeline,
            "ingested_at": now,
        }
