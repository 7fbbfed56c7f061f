"""What an ingest run tells its caller: the report of what it did, the hooks a caller follows and
steers it with, and the progress (bar, `on_progress`, failures) as files finish."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.media.sources import display


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
    watch_matches: dict[str, int] = field(default_factory=dict)  # new matches per watch (engine.watches)
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
            + self._watched()
        )

    def _watched(self) -> str:
        matched = {name: n for name, n in self.watch_matches.items() if n}
        return (
            "; new watch matches: " + ", ".join(f"{name} {n}" for name, n in matched.items())
            if matched
            else ""
        )


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


class Progress:
    """A run's files as they finish (written, skipped, failed or cancelled): the terminal bar, the
    caller's `on_progress`, and each failure or skipped metadata row in the report and `on_error`."""

    def __init__(
        self, report: IngestReport, hooks: IngestHooks, on_error: Callable[[str, str], None], show: bool
    ):
        self.report = report
        self.hooks = hooks
        self.on_error = on_error
        self.show = show
        self.done = 0
        self._bar = None

    def start(self, found: int) -> None:
        """`found` files are to be ingested: the bar appears."""
        from tqdm import tqdm

        self.report.found = found
        self._bar = tqdm(total=found, unit="img", disable=not self.show, dynamic_ncols=True)

    def advance(self, files: int) -> None:
        """`files` more are finished."""
        self.done += files
        self._bar.update(files)
        if self.hooks.on_progress:
            self.hooks.on_progress(self.done, self.report.found)

    def fail(self, path: Path | str, reason: str) -> None:
        """A file failed (it is finished too)."""
        where = display(path)
        self.report.failed.append((where, reason))
        self.on_error(where, reason)
        self.advance(1)

    def skip_row(self, where: str, reason: str) -> None:
        """A metadata row was not applied."""
        self.report.metadata_skipped.append((where, reason))
        self.on_error(where, reason)

    def show_counts(self) -> None:
        """The bar's counts of written, unchanged and failed files."""
        report = self.report
        self._bar.set_postfix(ok=report.ingested, skip=report.unchanged, fail=len(report.failed))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
