"""A Dask cluster: each file is one task that reads, decodes, OCRs and encodes it on a worker.

Workers load the OCR readers and encoders once (per worker process, on its first task) and run one
task per thread; ONNX Runtime and Tesseract use one thread per task, so a worker started with
`--nthreads N` keeps N cores busy. The driver keeps a bounded window of tasks in flight, and writes
the results to the store itself: point ids come from content hashes, so a task Dask retries after a
worker died produces the same point. A file that kills a worker on every try (Dask's
`distributed.scheduler.allowed-failures`, 3 by default) fails with one line; the run goes on.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dask
import yaml

from engine.errors import AdsearchError
from engine.ingest.executors.base import Executor, ModelFacts, Outcome, Pending, encode_processed, read_source
from engine.media.images import ImageError, analyse_image
from engine.media.sources import SourcePolicy

log = logging.getLogger(__name__)

# Dask settings for our workers (why: in the file); applied to a `local` cluster's workers.
WORKER_CONFIG_FILE = Path(__file__).with_name("dask-workers.yaml")


def worker_config() -> dict[str, object]:
    """WORKER_CONFIG_FILE as dotted keys, for dask.config.set."""

    def flat(tree: dict, prefix: str = "") -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in tree.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    return flat(yaml.safe_load(WORKER_CONFIG_FILE.read_text()))


class ClusterError(AdsearchError):
    """The Dask scheduler cannot be reached or has no workers."""


class DaskExecutor(Executor):
    """Tasks on the Dask cluster at `settings.cluster` (`tcp://host:8786`), or on a local cluster of
    `settings.workers` single-threaded worker processes for `local` / `local:N`."""

    def __init__(self, settings, connect_timeout: float = 30.0):
        from distributed import Client, LocalCluster

        self.settings = settings
        self._settings_json = settings.model_dump_json(exclude={"api_key", "qdrant_api_key", "qdrant_url"})
        self._cluster = None
        address = settings.cluster
        try:
            if address == "local" or address.startswith("local:"):
                workers = int(address.partition(":")[2] or settings.workers)
                with dask.config.set(worker_config()):
                    self._cluster = LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                    )
                address = self._cluster.scheduler_address
            self.client = Client(address, timeout=connect_timeout)
            self.client.wait_for_workers(1, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            raise ClusterError(f"cannot use the Dask cluster at {settings.cluster}: {exc}") from None
        self.threads = sum(self.client.nthreads().values())
        log.info("ingesting on %s: %d worker threads", address, self.threads)
        self._facts = self._worker_facts()
        self.signature = self._facts.pipeline["signature"]

    def _worker_facts(self) -> ModelFacts:
        """The models as a worker loads them (it keeps them for its tasks): this machine loads none."""
        try:
            return self.client.submit(worker_facts, self._settings_json, pure=False).result()
        except Exception as exc:  # noqa: BLE001 (a worker that cannot load the models: say why, once)
            self.close()
            raise ClusterError(f"a worker of {self.settings.cluster} cannot load the models: {exc}") from None

    def facts(self) -> ModelFacts:
        return self._facts

    def close(self) -> None:
        client, cluster = getattr(self, "client", None), self._cluster
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def process(self, todo: Iterator[Pending]) -> Iterator[tuple[Pending, Outcome]]:
        from distributed import as_completed

        window = max(4, 2 * self.threads)
        running = as_completed()
        items = {}
        for item in _take(todo, window):
            running.add(self._submit(item, items))
        for future in running:
            item = items.pop(future.key)
            yield item, self._outcome(future)
            future.release()
            for more in _take(todo, 1):
                running.add(self._submit(more, items))

    def _submit(self, item: Pending, items: dict):
        future = self.client.submit(
            process_file, str(item.path), item.sha256, item.known_ocr, self._settings_json, pure=False
        )
        items[future.key] = item
        return future

    def _outcome(self, future) -> Outcome:
        from distributed import KilledWorker

        try:
            processed = future.result()
        except KilledWorker:
            return "a worker died on this file every time it was tried"
        except Exception as exc:  # noqa: BLE001 (one bad file must not stop the run)
            if self.client.status != "running":  # the scheduler is gone: every other file would fail too
                raise ClusterError(
                    f"lost the Dask cluster at {self.settings.cluster}; what was written is kept, "
                    "rerun to resume"
                ) from None
            return f"{type(exc).__name__}: {exc}"
        if isinstance(processed, str):
            return processed
        if processed.signature != self.signature:
            return (
                f"a worker processed it with pipeline {processed.signature}, this ingest is "
                f"{self.signature}: give every worker the same models and OCR readers"
            )
        return processed


def _take(iterator: Iterator[Pending], n: int) -> list[Pending]:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) == n:
            break
    return out


# ---------------------------------------------------------------------- on the workers


@dataclass
class _WorkerModels:
    ocr: object
    encoders: object
    facts: ModelFacts
    max_pixels: int
    policy: SourcePolicy


_models: dict[str, _WorkerModels] = {}
_models_lock = threading.Lock()


def _worker_models(settings_json: str) -> _WorkerModels:
    """This worker process's OCR readers and encoders for these settings, loaded on first use."""
    with _models_lock:
        if settings_json not in _models:
            from engine.ingest.ocr import usable_ocr
            from engine.ingest.pipeline import model_facts
            from engine.models.encoders import load_encoders
            from engine.settings import Settings

            settings = Settings.model_validate(json.loads(settings_json))
            ocr = usable_ocr(settings.ocr_settings())
            encoders = load_encoders(settings, quiet=True)
            facts = model_facts(ocr, encoders)
            _models[settings_json] = _WorkerModels(
                ocr, encoders, facts, settings.max_image_pixels, SourcePolicy.of(settings)
            )
        return _models[settings_json]


def worker_facts(settings_json: str) -> ModelFacts:
    """One task: what this worker's models are (loading them, for the tasks that follow)."""
    return _worker_models(settings_json).facts


def process_file(path: str, sha256: str, known_ocr, settings_json: str) -> Outcome:
    """One task: read, decode, OCR (unless `known_ocr`) and encode one file. A file that cannot be
    read or decoded is an outcome (its reason), not a task error: nothing to retry or log there."""
    models = _worker_models(settings_json)
    data = read_source(path, sha256, models.policy)
    if isinstance(data, str):
        return data
    try:
        analysed = analyse_image(data, models.ocr, models.max_pixels, known_ocr)
    except ImageError as exc:
        return str(exc)
    return encode_processed(models.encoders, [analysed], models.facts.pipeline["signature"])[0]
