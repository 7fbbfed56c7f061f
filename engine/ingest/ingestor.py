"""Ingest: discover -> hash -> OCR + encode (an executor: engine.ingest.executors) -> upsert.

Idempotent and resumable: a point's id is the UUID5 of its bytes' sha256 and a point is written
whole (all vectors + payload in one upsert), so a crash loses at most the batch in flight and a
rerun skips every image already stored with the current pipeline.

Every point carries the built-in fields of engine.filters.BUILTIN_FIELDS: `folder` (the file's
folder relative to the path given, "." for that path itself or for a file given directly) and
`file_date` (the file's modification time) among them. Per-image metadata (engine.ingest.metadata) is
written into the payload of new points and set on stored ones without re-OCR or re-encoding, as are
built-ins a point stored by an older version lacks. A field missing from a later metadata file, or
left empty there, keeps its stored value: a metadata file adds and changes values, never removes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from engine.config import Settings
from engine.errors import AdsearchError
from engine.filters import BUILTIN_FIELDS
from engine.ingest.executors import Executor, Pending, Processed, make_executor
from engine.ingest.metadata import INGEST_PAYLOAD_KEYS, MetadataTable
from engine.ingest.ocr import usable_ocr
from engine.ingest.pipeline import ModelFacts
from engine.media.images import AnalysedImage
from engine.media.sources import (
    Source,
    SourcePolicy,
    discover_sources,
    display,
    is_remote,
    kept_original,
    modified,
    read_bytes,
    stored_path,
    write_atomically,
)
from engine.models.creative import CREATIVE_DIM
from engine.models.encoders import Encoders
from engine.schema import CREATIVE_CHANNEL, point_id, stored_ocr
from engine.store import PointData, Store

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What an ingest run did. Seconds per stage are busy time (OCR summed over workers).

    `metadata_updated` counts stored points (among `unchanged` and `new_paths`) whose payload got
    new metadata or missing built-in fields without being processed again; `metadata_skipped` lists
    the metadata rows not applied, (where, reason)."""

    found: int = 0
    ingested: int = 0
    unchanged: int = 0
    new_paths: int = 0
    cancelled: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    metadata_updated: int = 0
    metadata_skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    ocr_seconds: float = 0.0
    encode_seconds: float = 0.0
    upsert_seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.ingested / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        """One line for people."""
        metadata = ""
        if self.metadata_updated or self.metadata_skipped:
            metadata = (
                f"; fields updated on {self.metadata_updated} stored images without re-processing, "
                f"{len(self.metadata_skipped)} metadata rows skipped"
            )
        return (
            f"ingested {self.ingested}, unchanged {self.unchanged}, new paths for known images "
            f"{self.new_paths}, failed {len(self.failed)} of {self.found} files in {self.seconds:.1f} s "
            f"({self.images_per_second:.2f} images/s; busy: OCR {self.ocr_seconds:.1f} s over workers, "
            f"encoding {self.encode_seconds:.1f} s, upsert {self.upsert_seconds:.1f} s){metadata}"
        )


def collection_dims(settings: Settings, facts: ModelFacts, store: Store) -> dict[str, int]:
    """Dense sizes: CLIP's own, else the existing collection's image size, else the configured default;
    the creative fingerprint's (engine.models.creative), added to a collection made before it."""
    existing = store.dims() or {}
    image_dim = facts.dims["image"] or existing.get("image", settings.clip_dim)
    return {"image": image_dim, "text": facts.dims["text"], CREATIVE_CHANNEL: CREATIVE_DIM}


@dataclass
class IngestHooks:
    """How a caller follows and steers a run: `on_progress(files_done, files_found)` after each file;
    `cancelled(point_id)` asked, under `write_lock`, just before a point is written (True: drop it);
    `write_lock` held around every store write, so other writers interleave batch by batch."""

    on_progress: Callable[[int, int], None] | None = None
    cancelled: Callable[[str], bool] | None = None
    write_lock: threading.Lock | None = None

    def writing(self):
        return self.write_lock or contextlib.nullcontext()


class Ingestor:
    """Runs one ingest over files into a store with given encoders (or a function that loads them:
    called only when this machine encodes, not when a cluster's workers do)."""

    def __init__(
        self,
        settings: Settings,
        encoders: Encoders | Callable[[], Encoders],
        store: Store,
        on_error: Callable[[str, str], None] | None = None,
        progress: bool = True,
        hooks: IngestHooks | None = None,
        metadata: MetadataTable | None = None,
    ):
        self.settings = settings
        self._encoders = encoders if callable(encoders) else lambda: encoders
        self.store = store
        self.on_error = on_error or (lambda path, reason: log.error("%s: %s", path, reason))
        self.progress = progress
        self.hooks = hooks or IngestHooks()
        self._done = 0
        self.ocr = usable_ocr(settings.ocr_settings())
        self.policy = SourcePolicy.of(settings)
        self.facts: ModelFacts | None = None  # known once the executor is up (run)
        self.report = IngestReport()
        self._paths_by_id: dict[str, list[str]] = {}
        self.metadata = metadata
        self._metadata_by_id: dict[str, dict] = {}  # metadata of the points processed in this run

    @property
    def pipeline(self) -> dict:
        """The pipeline record of the models this run encodes with (known once `run` has begun)."""
        return self.facts.pipeline

    def run(self, paths: Iterable[str | Path]) -> IngestReport:
        """Ingest every image under `paths`; per-file problems are reported, never raised."""
        from tqdm import tqdm

        start = time.perf_counter()
        with self.hooks.writing():
            fields = self._fields()  # refuses a metadata file at odds with the collection, before any write
        with make_executor(self.settings, self._encoders, self.ocr) as executor:
            self.facts = executor.facts()
            with self.hooks.writing():
                self.store.ensure_collection(collection_dims(self.settings, self.facts, self.store))
                self._record_metadata(fields)
            for where, reason in self.metadata.problems if self.metadata else []:
                self._skip_row(where, reason)
            files = list(discover_sources(list(paths), self.policy))
            self.report.found = len(files)
            self._bar = tqdm(total=len(files), unit="img", disable=not self.progress, dynamic_ncols=True)
            self._process(executor, self._pending(files))
        self._bar.close()
        for where, reason in self.metadata.unmatched() if self.metadata else []:
            self._skip_row(where, reason)
        with self.hooks.writing():
            self.store.flush()
            self.store.optimize()
        self.report.seconds = time.perf_counter() - start
        return self.report

    # ------------------------------------------------------------------ steps

    def _skip_row(self, where: str, reason: str) -> None:
        self.report.metadata_skipped.append((where, reason))
        self.on_error(where, reason)

    def _fail(self, path: Path | str, reason: str) -> None:
        where = display(path)
        self.report.failed.append((where, reason))
        self.on_error(where, reason)
        self._advance(1)

    def _advance(self, files: int) -> None:
        """`files` more are finished (written, skipped, failed or cancelled)."""
        self._done += files
        self._bar.update(files)
        if self.hooks.on_progress:
            self.hooks.on_progress(self._done, self.report.found)

    def _pending(self, files: list[Source]) -> Iterator[Pending]:
        """Files still to process, triaged a chunk at a time as the OCR queue asks for more: no
        barrier between chunks, so the workers never wait for a chunk to finish."""
        chunk = max(64, self.settings.batch_size * 4)
        for begin in range(0, len(files), chunk):
            yield from self._triage(files[begin : begin + chunk])
            self._bar.set_postfix(
                ok=self.report.ingested, skip=self.report.unchanged, fail=len(self.report.failed)
            )

    def _triage(self, files: list[Source]) -> list[Pending]:
        """Hash files; skip those stored with this pipeline (adding new paths and fields); return the rest."""
        hashed: list[tuple[Pending, dict]] = []
        for found in files:
            if found.error:
                self._fail(found.location, found.error)
                continue
            try:
                data = read_bytes(found.location, self.policy)
                mtime = modified(found.location)
            except OSError as exc:
                self._fail(found.location, f"cannot read file ({exc.strerror or exc})")
                continue
            sha = hashlib.sha256(data).hexdigest()
            item = Pending(found.location, sha, len(data), folder=found.folder, file_date=_file_date(mtime))
            if is_remote(found.location):
                item.data = data
            hashed.append((item, self.metadata.for_file(found.relative, sha) if self.metadata else {}))
        with self.hooks.writing():
            return self._split_stored(hashed)

    def _split_stored(self, hashed: list[tuple[Pending, dict]]) -> list[Pending]:
        """Record new paths and fields of images already stored by this pipeline; return the others."""
        stored = self.store.retrieve([point_id(p.sha256) for p, _ in hashed])
        todo = []
        for item, metadata in hashed:
            pid = point_id(item.sha256)
            path = stored_path(item.path)
            payload = stored.get(pid)
            if pid in self._paths_by_id:  # same bytes seen earlier in this run
                self._add_path(pid, path, metadata)
                self.report.new_paths += 1
                self._advance(1)
            elif payload and self._up_to_date(payload):
                self._update_stored(pid, payload, item, path, metadata)
                self._keep_copy(pid, item)  # stored before copies were kept
                self._advance(1)
            else:
                known = payload.get("paths", []) if payload else []
                self._paths_by_id[pid] = [*known, path] if path not in known else list(known)
                self._metadata_by_id[pid] = dict(metadata)
                if payload:  # processed again: keep what ingest does not write (metadata, built-ins)
                    kept = {"folder", "file_date"}
                    item.keep = {
                        k: v for k, v in payload.items() if k not in INGEST_PAYLOAD_KEYS or k in kept
                    }
                if payload and self._same_ocr(payload):
                    item.known_ocr = stored_ocr(payload)
                todo.append(item)
        return todo

    def _update_stored(self, pid: str, payload: dict, item: Pending, path: str, metadata: dict) -> None:
        """A point stored by this pipeline: add the path, missing built-ins and changed metadata, in
        one write; no OCR, no encoding."""
        changes = {k: v for k, v in metadata.items() if payload.get(k) != v}
        for name, value in (("folder", item.folder), ("file_date", item.file_date)):
            if name not in payload and value:  # stored by a version without it (a date, if known)
                changes[name] = value
        new_path = path not in payload.get("paths", [])
        if new_path:
            changes["paths"] = [*payload.get("paths", []), path]
            self.report.new_paths += 1
        else:
            self.report.unchanged += 1
        if changes:
            self.store.set_payload(pid, changes)
            payload.update(changes)  # the same point may come again in this chunk under another path
        if set(changes) - {"paths"}:
            self.report.metadata_updated += 1

    def _up_to_date(self, payload: dict) -> bool:
        """Made by this pipeline, with every reader having read it (a reader that failed on the
        image last time gets another try)."""
        same = payload.get("pipeline", {}).get("signature") == self.pipeline["signature"]
        return same and not payload.get("ocr_errors")

    def _same_ocr(self, payload: dict) -> bool:
        """The stored OCR can be reused: same OCR settings and Tesseract, and no reader failed."""
        pipeline = payload.get("pipeline", {})
        return (
            pipeline.get("ocr") == self.pipeline["ocr"]
            and pipeline.get("tesseract") == self.pipeline["tesseract"]
            and not payload.get("ocr_errors")
        )

    def _add_path(self, pid: str, path: str, metadata: dict) -> None:
        """Another path of a point processed in this run; its metadata rows merge into the point's."""
        known = self._paths_by_id[pid]
        merged = self._metadata_by_id.setdefault(pid, {})
        changed = {k: v for k, v in metadata.items() if merged.get(k) != v}
        if path in known and not changed:
            return
        if path not in known:
            known.append(path)
        merged.update(changed)
        stored = self.store.retrieve([pid])
        if pid in stored:  # already written in an earlier batch of this run
            paths = sorted(set(stored[pid].get("paths", [])) | set(known))
            self.store.set_payload(pid, {"paths": paths, **changed})

    def _process(self, executor: Executor, todo: Iterator[Pending]) -> None:
        """Outcomes from the executor, written to the store a batch at a time."""
        done: list[tuple[Pending, Processed]] = []
        for item, outcome in executor.process(todo):
            if isinstance(outcome, str):
                self._fail(item.path, outcome)
                continue
            self.report.ocr_seconds += outcome.analysed.ocr_seconds
            self.report.encode_seconds += outcome.encode_seconds
            for reader, reason in outcome.analysed.ocr.errors.items():
                log.warning(
                    "%s: OCR reader %s failed (%s); kept the other readers' words, a rerun tries again",
                    item.path,
                    reader,
                    reason,
                )
            done.append((item, outcome))
            if len(done) >= self.settings.batch_size:
                self._write(done)
                done = []
        if done:
            self._write(done)

    def _write(self, batch: list[tuple[Pending, Processed]]) -> None:
        """Upsert a batch as whole points (every vector and the payload in one write)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        points = []
        for item, processed in batch:
            pid = point_id(item.sha256)
            points.append(
                PointData(pid, processed.vectors, self._payload(item, processed.analysed, pid, now))
            )
        start = time.perf_counter()
        with self.hooks.writing():
            kept = [p for p in points if not (self.hooks.cancelled and self.hooks.cancelled(p.id))]
            refused = self._upsert(kept)
        self.report.upsert_seconds += time.perf_counter() - start
        written = {p.id for p in kept} - {p.id for p, _ in refused}
        for (item, _), point in zip(batch, points, strict=True):
            if point.id in written:
                self._keep_copy(point.id, item)
        self.report.ingested += len(kept) - len(refused)
        self.report.cancelled += len(points) - len(kept)
        self._advance(len(points) - len(refused))
        for point, reason in refused:
            self._fail(self._paths_by_id[point.id][-1], f"not stored ({reason})")

    def _keep_copy(self, pid: str, item: Pending) -> None:
        """A remote image's bytes kept in <db>/originals (engine.media.sources.kept_original), so showing it
        never makes the server fetch a URL; they are the hashed bytes, so the copy matches its sha256."""
        if item.data is not None:
            target = kept_original(self.settings.db, pid)
            if not target.exists():
                write_atomically(target, item.data)
            item.data = None

    def _upsert(self, points: list[PointData]) -> list[tuple[PointData, str]]:
        """Write a batch; if the store refuses it, each point alone, so one point the store cannot
        take fails by itself. The points refused, with the reason; raises if the store took none."""
        try:
            self.store.upsert(points)
            return []
        except (ValueError, TypeError) as exc:
            if len(points) == 1:
                raise
            log.warning("the store refused a batch (%s); writing its points one by one", exc)
        refused = []
        for point in points:
            try:
                self.store.upsert([point])
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
            **self._metadata_by_id.get(pid, {}),
        }

    def _computed(self, item: Pending, analysed: AnalysedImage, pid: str, now: str) -> dict:
        ocr = analysed.ocr
        return {
            "paths": list(self._paths_by_id[pid]),
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
            "pipeline": self.pipeline,
            "ingested_at": now,
        }

    def _fields(self) -> dict[str, str]:
        """The collection's metadata fields after this run (name -> type): those recorded, plus the
        metadata file's; AdsearchError naming a field whose type would change."""
        recorded = dict(self.store.metadata().get("fields") or {})
        for name, kind in (self.metadata.fields if self.metadata else {}).items():
            if recorded.setdefault(name, kind) != kind:
                was = recorded[name]
                raise AdsearchError(
                    f"metadata field '{name}' is {kind} in {self.metadata.source}, but collection "
                    f"'{self.store.collection}' holds it as {was}: make its values {was} or give "
                    f'a --schema with "{name}": "{was}"'
                )
        return recorded

    def _record_metadata(self, fields: dict[str, str]) -> None:
        """What the collection was made with, its metadata fields, and payload indexes for every
        field a filter or facet can name (built-ins but has_text, a vector's presence)."""
        self.store.update_metadata(
            {
                "visual": self.facts.visual,
                "clip_error": self.facts.clip_error,
                "models": self.facts.models,
                "pipeline": self.pipeline,
                "fields": fields,
            }
        )
        ensure_indexes = getattr(self.store, "ensure_indexes", None)
        if ensure_indexes is not None:
            ensure_indexes({**{k: v for k, v in BUILTIN_FIELDS.items() if k != "has_text"}, **fields})


def _file_date(mtime: float | None) -> str:
    """A file's modification time as RFC 3339 UTC text (how datetime fields are stored); "" unknown."""
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds") if mtime is not None else ""


def ingest(
    paths: Iterable[str | Path],
    settings: Settings,
    encoders: Encoders | Callable[[], Encoders],
    store: Store,
    on_error: Callable[[str, str], None] | None = None,
    progress: bool = True,
    hooks: IngestHooks | None = None,
    metadata: MetadataTable | None = None,
) -> IngestReport:
    """Ingest every image under `paths` into `store`, with per-image `metadata` (engine.ingest.metadata)
    when given; see Ingestor."""
    return Ingestor(settings, encoders, store, on_error, progress, hooks, metadata).run(paths)
