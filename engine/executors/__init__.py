"""Ingest executors: where decoding, OCR and encoding run. `local` (one machine: OCR in a process pool,
encoding batched in the calling process) or `dask` (tasks on a Dask cluster's workers). Both take the
files ingest still has to process and yield each one's outcome; ingest itself (triage, payloads,
writes to the store) is the same for both."""

from __future__ import annotations

from engine.executors.base import Executor, Outcome, Pending, Processed, encode_images

__all__ = ["Executor", "Outcome", "Pending", "Processed", "encode_images", "make_executor"]


def make_executor(settings, encoders, ocr, signature: str) -> Executor:
    """The executor `settings.cluster` asks for: none -> local, an address or `local[:N]` -> Dask."""
    if settings.cluster:
        from engine.executors.dask import DaskExecutor

        return DaskExecutor(settings, signature)
    from engine.executors.local import LocalExecutor

    return LocalExecutor(settings, encoders, ocr, signature)
