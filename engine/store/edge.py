"""`EdgeStore`: the collection in Qdrant Edge, the Qdrant engine in-process, on a local folder (the
default backend). This module holds the store's files, lock and point I/O; its collection layout is
edge_layout.py's, its queries edge_queries.py's."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from engine.errors import StoreError
from engine.schema import SparseVec
from engine.settings import Settings
from engine.store.backends import StoreBackend
from engine.store.base import (
    HNSW_EF,
    HNSW_EF_CONSTRUCT,
    HNSW_M,
    OVERSAMPLING,
    SIDECAR_FIELDS,
    PointData,
    Store,
)
from engine.store.edge_layout import EdgeLayout
from engine.store.edge_queries import EdgeQueries
from engine.store.sidecar import Sidecar
from engine.store.warm import on_demand_files, opening_files, read_ahead


class EdgeStore(EdgeLayout, EdgeQueries, Store):
    """Embedded Qdrant Edge shard in `<db>/<collection>/`, metadata in `<collection>.meta.json`.

    A collection made with `quantize` keeps its dense vectors twice: int8 (scalar quantisation) in
    RAM, searched through the HNSW graph, and the float32 originals on disk (memory-mapped, read for
    rescoring the best `OVERSAMPLING` x limit candidates). Without it (and in collections made before
    the option) the float32 vectors are searched in RAM. The layout is fixed when the collection is
    made; `adsearch migrate` into a new folder changes it.

    The heavy payload fields (base.SIDECAR_FIELDS: word boxes, raw OCR text, pipeline record) live
    in `<collection>.sidecar.sqlite` beside the shard, not in Qdrant's payload; every read hands back
    whole payloads. Writes go to the sidecar first (committed), then to the shard: a crash between
    the two leaves a sidecar row whose point does not exist (not found, so ingest processes the
    file again and overwrites the row), never a point without its heavy fields. Deletes go the other
    way (point, then row). Points of a collection made before keep those fields in their payload and
    are read as they are."""

    def __init__(self, db: Path, collection: str, quantize: bool = True):
        import qdrant_edge as qe

        self.qe = qe
        self.quantize = quantize
        # search-time knobs (the benchmark varies them): candidates rescored per result, HNSW beam
        self.oversampling = OVERSAMPLING
        self.hnsw_ef: int | None = HNSW_EF
        # a new shard's knobs: its graphs' links per node and build beam, and its indexing threshold
        # in KB (Qdrant's default when None; tests make it tiny so a small collection gets its HNSW
        # graph and int8 vectors)
        self.m = HNSW_M
        self.ef_construct = HNSW_EF_CONSTRUCT
        self.indexing_threshold_kb: int | None = None
        self.collection = collection
        self.db = Path(db)
        self.db.mkdir(parents=True, exist_ok=True)
        self.path = self.db / collection
        self.meta_path = self.db / f"{collection}.meta.json"
        self._lock = _lock_folder(self.db)
        self.shard = None
        if self._exists():
            read_ahead(opening_files(self.path))  # sequential reads: opening then faults in no pages
            self.shard = qe.EdgeShard.load(str(self.path))
        self.sidecar = Sidecar(self.db / f"{collection}.sidecar.sqlite")

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeStore:
        """The store in `settings.db`, laid out as the settings say when new."""
        store = cls(settings.db, settings.collection, quantize=settings.quantize)
        store.hnsw_ef = settings.hnsw_ef
        return store

    def _exists(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())

    def _require(self):
        if self.shard is None:
            raise StoreError(
                f"collection '{self.collection}' does not exist in {self.db}: run `adsearch ingest`"
            )
        return self.shard

    def _vector(self, value):
        if isinstance(value, SparseVec):
            return self.qe.SparseVector(value.indices, value.values)
        # a numpy row converts element by element (4x slower than a list)
        return value.tolist() if hasattr(value, "tolist") else value

    def upsert(self, points: list[PointData]) -> None:
        if not points:
            return
        qe = self.qe
        shard = self._require()
        light, heavy = zip(*(_split(p.payload) for p in points), strict=True)
        self.sidecar.replace({p.id: h for p, h in zip(points, heavy, strict=True)})  # first: see above
        shard.update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(p.id, {k: self._vector(v) for k, v in p.vectors.items()}, payload)
                    for p, payload in zip(points, light, strict=True)
                ]
            )
        )

    def _records(self, ids: list[str], with_payload: bool, with_vector: bool) -> list:
        if self.shard is None or not ids:
            return []
        return self.shard.retrieve(ids, with_payload=with_payload, with_vector=with_vector)

    def set_payload(self, point_id: str, payload: dict) -> None:
        if not self._require().retrieve([point_id], with_payload=False, with_vector=False):
            raise StoreError(f"no point {point_id}")
        light, heavy = _split(payload)
        self.sidecar.update(point_id, heavy)
        if light:
            self.shard.update(self.qe.UpdateOperation.set_payload([point_id], light))

    def delete(self, ids: list[str]) -> None:
        if ids:
            self._require().update(self.qe.UpdateOperation.delete_points(ids))
            self.sidecar.delete(ids)

    def _scroll(self, batch: int, fields: list[str] | None, with_vector: bool, where=()) -> Iterator:
        if self.shard is None:
            return
        selector = self.qe.PayloadSelector.Include(fields) if fields else True
        flt = self._filter(where)
        offset = None
        while True:
            records, offset = self.shard.scroll(
                self.qe.ScrollRequest(
                    offset=offset, limit=batch, filter=flt, with_payload=selector, with_vector=with_vector
                )
            )
            yield from records
            if offset is None:
                return

    def metadata(self) -> dict:
        return json.loads(self.meta_path.read_text()) if self.meta_path.exists() else {}

    def update_metadata(self, values: dict) -> None:
        _write_json_atomically(self.meta_path, {**self.metadata(), **values})

    def warm_files(self) -> list[Path]:
        """What searches read a page at a time: the shard's stored vectors and payloads, the sidecar."""
        sidecar = [self.sidecar.path] if self.sidecar.path.is_file() else []
        return on_demand_files(self.path) + sidecar

    def optimize(self) -> None:
        """Build indexes and merge segments (done once after an ingest)."""
        if self.shard is not None:
            self.shard.optimize()

    def flush(self) -> None:
        if self.shard is not None:
            self.shard.flush()

    def _add_sidecar(self, payloads: dict[str, dict], fields=None) -> None:
        for pid, extra in self.sidecar.get(payloads, fields).items():
            payloads[pid].update(extra)

    def close(self) -> None:
        self.sidecar.close()
        if self.shard is not None:
            self.shard.flush()
            self.shard.close()
            self.shard = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _split(payload: dict) -> tuple[dict, dict]:
    """(what Qdrant keeps, what the sidecar keeps) of a payload."""
    heavy = {k: v for k, v in payload.items() if k in SIDECAR_FIELDS}
    return ({k: v for k, v in payload.items() if k not in SIDECAR_FIELDS} if heavy else payload), heavy


def _lock_folder(db: Path):
    """Hold an exclusive lock on the store folder for this process's lifetime."""
    handle = open(db / ".lock", "a+")  # noqa: SIM115 (kept open: the lock lives with the store)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StoreError(f"store {db} is in use by PID {holder}; stop it or use another --db") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _write_json_atomically(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


# the default backend: no Qdrant URL given
BACKEND = StoreBackend(
    "embedded", handles=lambda settings: not settings.qdrant_url, open=EdgeStore.from_settings
)
