"""Ingest executors: where decoding, OCR and encoding run. `local` (one machine: OCR in a process pool,
encoding batched in the calling process) or `dask` (tasks on a Dask cluster's workers). Both take the
files ingest still has to process and yield each one's outcome; ingest itself (triage, payloads,
writes to the store) is the same for both."""

from __future__ import annotations

from collections.abc import Callable

from engine.ingest.executors.base import Executor, ModelFacts, Outcome, Pending, Processed, encode_images

__all__ = ["Executor", "ModelFacts", "Outcome", "Pending", "Processed", "encode_images", "make_executor"]


def make_executor(settings, encoders: Callable[[], object], ocr) -> Executor:
    """The executor `settings.cluster` asks for: none -> local (it calls `encoders()` for the models
    it encodes with), an address or `local[:N]` -> Dask (the workers load their own; this machine
    loads none)."""
    if settings.cluster:
        from engine.ingest.executors.dask import DaskExecutor

        return DaskExecutor(settings)
    from engine.ingest.executors.local import LocalExecutor

    return LocalExecutor(settings, encoders(), ocr)
