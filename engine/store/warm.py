"""Start-up of a big embedded store: its files read in large sequential reads, so the kernel holds
them in memory, rather than one page fault at a time as Qdrant touches them (a few hundred MB/s
instead of ~1 GB/s here: at 100,000 points opening the shard took 1.9 s cold and 0.2 s after the
read-ahead, and the first searches 4-30 ms instead of 1; docs/scaling.md).

- `opening_files`: what opening a shard reads (int8 vectors, graphs, the sparse inverted index, id
  tracker, payload indexes, write-ahead log), read just before it opens.
- `on_demand_files`: what searches read page by page (the float32 originals rescoring reads, stored
  payloads, stored sparse vectors), read by a `Warmup` in the background while the server answers,
  when they fit in the memory the machine has free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

CHUNK = 8 << 20  # bytes per read


def _on_demand(path: Path) -> bool:
    parts = path.parts
    stored_vectors = any(p.startswith("vector_storage-") for p in parts) and not path.name.startswith(
        "quantized"
    )
    return stored_vectors or "payload_storage" in parts


def shard_files(shard: Path) -> list[Path]:
    """Every regular file under a shard folder (no links followed), in a stable order."""
    if not shard.is_dir():
        return []
    return sorted(p for p in shard.rglob("*") if p.is_file() and not p.is_symlink())


def opening_files(shard: Path) -> list[Path]:
    """The files opening the shard reads."""
    return [p for p in shard_files(shard) if not _on_demand(p)]


def on_demand_files(shard: Path) -> list[Path]:
    """The files searches read a page at a time."""
    return [p for p in shard_files(shard) if _on_demand(p)]


def read_ahead(paths: Iterable[Path], done: Callable[[int], None] = lambda n: None) -> int:
    """Read the files through once (into the page cache); bytes read. `done(n)` after each chunk.
    A file that vanishes or cannot be read is skipped: this only saves time later."""
    total = 0
    for path in paths:
        try:
            with open(path, "rb", buffering=0) as handle:
                while chunk := handle.read(CHUNK):
                    total += len(chunk)
                    done(len(chunk))
        except OSError:
            continue
    return total


def available_bytes() -> int:
    """Memory the kernel says is available (MemAvailable), or 0 when it does not say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Warmup:
    """Reads `paths` ahead in a background thread, then runs `then` (the server loads its encoders
    and runs one search); `state()` says how far it got, for /health. The files are skipped when
    they would take more than half the memory available (they would only push each other out)."""

    def __init__(self, paths: list[Path], then: Callable[[], None] | None = None):
        self.paths = paths
        self.then = then
        self.total = sum(_size(p) for p in paths)
        self.read = 0
        self.started = self.finished = None
        self.note = ""
        self._thread = threading.Thread(target=self._run, name="warmup", daemon=True)

    def start(self) -> Warmup:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """True when the warm-up has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def warming(self) -> bool:
        return self.started is not None and self.finished is None

    def _run(self) -> None:
        try:
            if self.total > available_bytes() // 2:
                self.note = (
                    f"files not read ahead: {self.total / 2**20:,.0f} MiB is over half the memory available"
                )
            else:
                read_ahead(self.paths, self._count)
            if self.then is not None:
                self.then()
        except Exception as exc:  # noqa: BLE001 (warming only saves time: report it, serve anyway)
            self.note = f"warm-up stopped: {type(exc).__name__}: {exc}"
        finally:
            self.finished = time.monotonic()

    def _count(self, n: int) -> None:
        self.read += n

    def state(self) -> dict:
        """warming (bool), MiB read of MiB to read, seconds so far (or taken), and a note if any."""
        end = self.finished if self.finished is not None else time.monotonic()
        return {
            "warming": self.warming,
            "read_mib": round(self.read / 2**20, 1),
            "total_mib": round(self.total / 2**20, 1),
            "seconds": round(end - self.started, 2) if self.started is not None else 0.0,
            "note": self.note,
        }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
