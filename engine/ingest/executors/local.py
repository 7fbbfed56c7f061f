"""One machine: decode + OCR in a pool of worker processes, encoding batched in this process."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from engine.ingest.executors.base import Executor, ModelFacts, Outcome, Pending, encode_processed, read_source
from engine.media.images import AnalysedImage, ImageError, analyse_image
from engine.media.sources import SourcePolicy

log = logging.getLogger(__name__)


class LocalExecutor(Executor):
    """OCR in `settings.workers` processes with a bounded window of files in flight; each batch of
    `settings.batch_size` finished files is encoded here while the workers read the next ones."""

    def __init__(self, settings, encoders, ocr):
        from engine.ingest.pipeline import model_facts

        self.settings = settings
        self.encoders = encoders
        self.ocr = ocr
        self._facts = model_facts(ocr, encoders)
        self.signature = self._facts.pipeline["signature"]
        self.policy = SourcePolicy.of(settings)
        self._pool = self._new_pool()

    def facts(self) -> ModelFacts:
        return self._facts

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: workers never inherit torch's thread pools or the store's file handles.
        return ProcessPoolExecutor(
            max_workers=max(1, self.settings.workers), mp_context=multiprocessing.get_context("spawn")
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def process(self, todo: Iterator[Pending]) -> Iterator[tuple[Pending, Outcome]]:
        window = max(2, self.settings.workers * 2 + self.settings.batch_size)
        retry: list[Pending] = []  # in flight when a worker crashed: submitted again
        running: dict[Future, Pending] = {}
        done: list[tuple[Pending, AnalysedImage]] = []
        exhausted = False
        while True:
            while len(running) < window:
                item = retry.pop() if retry else (None if exhausted else next(todo, None))
                exhausted = exhausted or (item is None and not retry)
                if item is None:
                    break
                data = read_source(item.path, item.sha256, self.policy, kept=item.data)
                if isinstance(data, str):
                    yield item, data
                    continue
                args = (data, self.ocr, self.settings.max_image_pixels, item.known_ocr)
                running[self._pool.submit(analyse_image, *args)] = item
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                item = running.pop(future)
                try:
                    done.append((item, future.result()))
                except ImageError as exc:
                    yield item, str(exc)
                except BrokenProcessPool:
                    yield item, "the OCR worker crashed on this file"
                    self._restart(running, retry)
                    break
                except Exception as exc:  # noqa: BLE001 (one bad file must not stop the run)
                    yield item, f"{type(exc).__name__}: {exc}"
            if len(done) >= self.settings.batch_size:
                yield from self._encoded(done)
                done = []
        if done:
            yield from self._encoded(done)

    def _restart(self, running: dict[Future, Pending], retry: list[Pending]) -> None:
        """A worker died (out of memory, a crash in a native library): requeue the others, new pool."""
        retry.extend(running.values())
        running.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def _encoded(self, batch: list[tuple[Pending, AnalysedImage]]) -> Iterator[tuple[Pending, Outcome]]:
        processed = encode_processed(self.encoders, [a for _, a in batch], self.signature)
        yield from zip((item for item, _ in batch), processed, strict=True)
