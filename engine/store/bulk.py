"""Loading a whole collection at once (restore, migrate, the scale benchmark), in the order Qdrant
recommends for bulk loads: every point first, the payload indexes after the last one, then one
`optimize` that builds the HNSW graphs and int8 vectors. Nothing is indexed while the points go in
(an embedded shard builds graphs only when optimised), and a search during the load is correct, only
exact and slower; each step is timed apart."""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.store.base import PointData, Store

BULK_BATCH = 2048  # points per write: one sidecar transaction (one fsync) and one shard update each


@dataclass
class BulkLoad:
    """`write` the points in batches, then `finish` with the payload indexes to make."""

    store: Store
    points: int = 0
    write_s: float = 0.0
    index_s: float = 0.0
    optimize_s: float = 0.0

    def write(self, points: list[PointData]) -> None:
        """Write a batch of points (they are searchable when this returns)."""
        start = time.perf_counter()
        self.store.upsert(points)
        self.write_s += time.perf_counter() - start
        self.points += len(points)

    def finish(self, indexes: dict[str, str]) -> None:
        """Make the payload indexes over every point, then build the graphs and int8 vectors."""
        start = time.perf_counter()
        self.store.flush()
        self.write_s += time.perf_counter() - start
        start = time.perf_counter()
        self.store.ensure_indexes(indexes)
        self.index_s = time.perf_counter() - start
        start = time.perf_counter()
        self.store.optimize()
        self.optimize_s = time.perf_counter() - start

    def figures(self) -> dict[str, float]:
        """Seconds of each step and the write rate (points a second)."""
        return {
            "points": self.points,
            "write_s": round(self.write_s, 1),
            "payload_index_s": round(self.index_s, 1),
            "optimize_s": round(self.optimize_s, 1),
            "write_points_per_s": round(self.points / self.write_s, 1) if self.write_s else 0.0,
        }
