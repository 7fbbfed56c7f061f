"""Ingest: discover -> hash and skip what is stored (engine.ingest.triage) -> OCR + encode (an
executor: engine.ingest.executors) -> upsert (engine.ingest.writer); this module runs the steps and
records what the collection is made with.

Idempotent and resumable: a point's id is the UUID5 of its bytes' sha256 and a point is written
whole (all vectors + payload in one upsert), so a crash loses at most the batch in flight and a
rerun skips every image already stored with the current pipeline.

Every point carries the fields of engine.schema.INGEST_FIELDS: `folder` (the file's
folder relative to the path given, "." for that path itself or for a file given directly) and
`file_date` (the file's modification time) among them. Per-image metadata (engine.ingest.metadata) is
written into the payload of new points and set on stored ones without re-OCR or re-encoding, as are
built-ins a point stored by an older version lacks. A field missing from a later metadata file, or
left empty there, keeps its stored value: a metadata file adds and changes values, never removes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from engine.errors import AdsearchError
from engine.filters import BUILTIN_FIELDS
from engine.ingest.executors import Executor, Pending, Processed, make_executor
from engine.ingest.metadata import MetadataTable
from engine.ingest.ocr import usable_ocr
from engine.ingest.pipeline import ModelFacts
from engine.ingest.report import IngestHooks, IngestReport, Progress
from engine.ingest.run import Run
from engine.ingest.triage import Triage
from engine.ingest.writer import PointWriter
from engine.media.sources import Source, SourcePolicy, discover_sources
from engine.models.encoders import Encoders
from engine.schema import IMAGE_CHANNEL
from engine.settings import Settings
from engine.store import Store
from engine.store.format import FORMAT_KEY, STORE_FORMAT

__all__ = ["IngestHooks", "IngestReport", "Ingestor", "ingest"]  # what the library, jobs and tests import

log = logging.getLogger(__name__)


def collection_dims(settings: Settings, facts: ModelFacts, store: Store) -> dict[str, int]:
    """Dense sizes: each registered channel's (engine.channels.dims; a vector new to an existing
    collection is added to it), the image channel's from CLIP, else the existing collection's, else
    the configured default."""
    existing = store.dims() or {}
    image_dim = facts.dims.get(IMAGE_CHANNEL) or existing.get(IMAGE_CHANNEL, settings.clip_dim)
    return {**facts.dims, IMAGE_CHANNEL: image_dim}


def collection_fields(store: Store, metadata: MetadataTable | None) -> dict[str, str]:
    """The collection's metadata fields after this run (name -> type): those recorded, plus the
    metadata file's; AdsearchError naming a field whose type would change."""
    recorded = dict(store.metadata().get("fields") or {})
    for name, kind in (metadata.fields if metadata else {}).items():
        if recorded.setdefault(name, kind) != kind:
            was = recorded[name]
            raise AdsearchError(
                f"metadata field '{name}' is {kind} in {metadata.source}, but collection "
                f"'{store.collection}' holds it as {was}: make its values {was} or give "
                f'a --schema with "{name}": "{was}"'
            )
    return recorded


def record_collection(store: Store, facts: ModelFacts, fields: dict[str, str]) -> None:
    """What the collection was made with, its metadata fields, and payload indexes for every
    field a filter or facet can name (built-ins but has_text, a vector's presence)."""
    store.update_metadata(
        {
            "visual": facts.visual,
            "clip_error": facts.clip_error,
            "models": facts.models,
            "pipeline": facts.pipeline,
            "fields": fields,
            FORMAT_KEY: STORE_FORMAT,  # written by this release (engine.store.format)
        }
    )
    ensure_indexes = getattr(store, "ensure_indexes", None)
    if ensure_indexes is not None:
        ensure_indexes({**{k: v for k, v in BUILTIN_FIELDS.items() if k != "has_text"}, **fields})


class Ingestor:
    """Runs one ingest over files into a store with given encoders (or a function that loads them:
    called only when this machine encodes, not when a cluster's workers do): the files are triaged
    (engine.ingest.triage), processed by an executor, written (engine.ingest.writer)."""

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
        self.hooks = hooks or IngestHooks()
        self.metadata = metadata
        self.ocr = usable_ocr(settings.ocr_settings())
        self.policy = SourcePolicy.of(settings)
        self.facts: ModelFacts | None = None  # known once the executor is up (run)
        self.report = IngestReport()
        on_error = on_error or (lambda path, reason: log.error("%s: %s", path, reason))
        self._progress = Progress(self.report, self.hooks, on_error, show=progress)

    @property
    def pipeline(self) -> dict:
        """The pipeline record of the models this run encodes with (known once `run` has begun)."""
        return self.facts.pipeline

    def run(self, paths: Iterable[str | Path]) -> IngestReport:
        """Ingest every image under `paths`; per-file problems are reported, never raised."""
        start = time.perf_counter()
        with self.hooks.writing():
            fields = collection_fields(self.store, self.metadata)  # refused before any write
        with make_executor(self.settings, self._encoders, self.ocr) as executor:
            self.facts = executor.facts()
            with self.hooks.writing():
                self.store.ensure_collection(collection_dims(self.settings, self.facts, self.store))
                record_collection(self.store, self.facts, fields)
            for where, reason in self.metadata.problems if self.metadata else []:
                self._progress.skip_row(where, reason)
            files = list(discover_sources(list(paths), self.policy))
            self._progress.start(len(files))
            self._process(executor, self._pending(files), self._start_steps())
        self._progress.close()
        for where, reason in self.metadata.unmatched() if self.metadata else []:
            self._progress.skip_row(where, reason)
        with self.hooks.writing():
            self.store.flush()
            self.store.optimize()
        self.report.seconds = time.perf_counter() - start
        return self.report

    def _start_steps(self) -> PointWriter:
        """This run's triage and writer, for the pipeline its executor encodes with; the writer."""
        run = Run(self.settings.db, self.store, self.pipeline, self._progress, self.hooks)
        self._triager = Triage(run, self.policy, self.metadata)
        return PointWriter(run)

    def _pending(self, files: list[Source]) -> Iterator[Pending]:
        """Files still to process, triaged a chunk at a time as the OCR queue asks for more: no
        barrier between chunks, so the workers never wait for a chunk to finish."""
        chunk = max(64, self.settings.batch_size * 4)
        for begin in range(0, len(files), chunk):
            yield from self._triage(files[begin : begin + chunk])
            self._progress.show_counts()

    def _triage(self, files: list[Source]) -> list[Pending]:
        """The files of a chunk still to process (Triage.sort)."""
        return self._triager.sort(files)

    def _process(self, executor: Executor, todo: Iterator[Pending], writer: PointWriter) -> None:
        """Outcomes from the executor, written to the store a batch at a time."""
        done: list[tuple[Pending, Processed]] = []
        for item, outcome in executor.process(todo):
            if isinstance(outcome, str):
                self._progress.fail(item.path, outcome)
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
                writer.write(done)
                done = []
        if done:
            writer.write(done)


def ingest(
    paths: Iterable[str | Path],
    settings: Settings,
    encoders: Encoders | Callable[[], Encoders],
    store: Store,
    *options,
    **named,
) -> IngestReport:
    """Ingest every image under `paths` into `store`, with per-image `metadata` (engine.ingest.metadata)
    when given; the further arguments are Ingestor's (on_error, progress, hooks, metadata)."""
    return Ingestor(settings, encoders, store, *options, **named).run(paths)
