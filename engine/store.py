"""The collection schema and every Qdrant call, for two backends with one interface.

- `EdgeStore` (default, embedded): Qdrant Edge, the Qdrant engine in-process, on a local folder.
- `ClientStore`: qdrant-client against a Qdrant server or cluster (`--qdrant-url`); tests drive it
  through qdrant-client's local mode, which speaks the same client API.

Schema (one point per image): dense `image` (CLIP) and `text` (MiniLM) vectors, cosine; sparse
`keywords` (BM25) with Qdrant's IDF modifier; the payload described in docs/architecture.md.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import Settings
from engine.errors import StoreError

DENSE_CHANNELS = ("image", "text")
SPARSE_CHANNEL = "keywords"
ID_NAMESPACE = uuid.UUID("6f1d3f8e-7c0a-4a8e-9a55-ad5ea4c40001")
# Heavy payload fields that search hits do not need (word boxes are fetched per image).
HIT_PAYLOAD_EXCLUDE = ["ocr_words", "ocr_raw_text", "pipeline"]


def point_id(sha256_hex: str) -> str:
    """Point id of an image: UUID5 of its bytes' sha256, so the same bytes always map to one point."""
    return str(uuid.uuid5(ID_NAMESPACE, sha256_hex))


@dataclass(frozen=True)
class SparseVec:
    """A sparse vector as Qdrant wants it: term ids and weights."""

    indices: list[int]
    values: list[float]


@dataclass
class PointData:
    """A point to write: id, named vectors (dense lists or SparseVec) and payload."""

    id: str
    vectors: dict[str, list[float] | SparseVec]
    payload: dict


@dataclass(frozen=True)
class ChannelQuery:
    """One channel's query vector."""

    channel: str
    vector: list[float] | SparseVec


@dataclass
class ScoredHit:
    id: str
    score: float
    payload: dict | None = None


@dataclass
class SearchResult:
    """Qdrant's fused ranking plus each channel's own ranking (for explanations)."""

    fused: list[ScoredHit]
    per_channel: dict[str, list[ScoredHit]] = field(default_factory=dict)


class Store(ABC):
    """What the engine needs from Qdrant. One implementation per backend."""

    collection: str

    @abstractmethod
    def ensure_collection(self, dims: dict[str, int]) -> None:
        """Create the collection with these dense sizes if missing; refuse mismatching sizes."""

    @abstractmethod
    def dims(self) -> dict[str, int] | None:
        """Dense vector sizes of the existing collection, or None when it does not exist yet."""

    @abstractmethod
    def upsert(self, points: list[PointData]) -> None: ...

    @abstractmethod
    def _records(self, ids: list[str], with_payload: bool, with_vector: bool) -> list:
        """The backend's records (with .id, .payload, .vector) for the ids that exist."""

    def retrieve(self, ids: list[str], with_vectors: bool = False) -> dict[str, dict]:
        """id -> payload for the ids that exist (plus `_vectors`: the vector names, when asked)."""
        out = {}
        for record in self._records(ids, with_payload=True, with_vector=with_vectors):
            payload = dict(record.payload or {})
            if with_vectors:
                payload["_vectors"] = sorted((record.vector or {}).keys())
            out[str(record.id)] = payload
        return out

    def vectors(self, point_id: str) -> dict[str, list[float] | SparseVec] | None:
        """The named vectors of one point, or None when it does not exist."""
        records = self._records([point_id], with_payload=False, with_vector=True)
        return _plain_vectors(records[0].vector) if records else None

    @abstractmethod
    def set_payload(self, point_id: str, payload: dict) -> None:
        """Merge these payload keys into an existing point."""

    @abstractmethod
    def delete(self, ids: list[str]) -> None: ...

    @abstractmethod
    def count(self, with_vector: str | None = None) -> int:
        """Number of points, or of points that carry the named vector."""

    @abstractmethod
    def _scroll(self, batch: int, fields: list[str] | None, with_vector: bool) -> Iterator:
        """Every record (with .id, .payload, .vector), fetched `batch` at a time."""

    def scroll(self, batch: int = 256, fields: list[str] | None = None) -> Iterator[tuple[str, dict]]:
        """Every (id, payload), the payload cut to `fields` when given."""
        for record in self._scroll(batch, fields, with_vector=False):
            yield str(record.id), dict(record.payload or {})

    def points(self, batch: int = 256) -> Iterator[PointData]:
        """Every point whole (vectors and payload), `batch` at a time: for copying a collection."""
        for record in self._scroll(batch, None, with_vector=True):
            yield PointData(str(record.id), _plain_vectors(record.vector), dict(record.payload or {}))

    @abstractmethod
    def search(
        self,
        queries: list[ChannelQuery],
        weights: list[float],
        limit: int,
        offset: int,
        prefetch_limit: int,
        rrf_k: int,
    ) -> SearchResult:
        """One batch call: the fused query (prefetch per channel + RRF) and each channel alone."""

    @abstractmethod
    def metadata(self) -> dict: ...

    @abstractmethod
    def update_metadata(self, values: dict) -> None: ...

    def flush(self) -> None:  # noqa: B027 (optional hook)
        """Make everything written so far durable."""

    def optimize(self) -> None:  # noqa: B027 (optional hook)
        """Build indexes after a bulk write (a Qdrant server does this by itself)."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release the store."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- Qdrant Edge (embedded)


class EdgeStore(Store):
    """Embedded Qdrant Edge shard in `<db>/<collection>/`, metadata in `<collection>.meta.json`."""

    def __init__(self, db: Path, collection: str):
        import qdrant_edge as qe

        self.qe = qe
        self.collection = collection
        self.db = Path(db)
        self.db.mkdir(parents=True, exist_ok=True)
        self.path = self.db / collection
        self.meta_path = self.db / f"{collection}.meta.json"
        self._lock = _lock_folder(self.db)
        self.shard = qe.EdgeShard.load(str(self.path)) if self._exists() else None

    def _exists(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())

    def ensure_collection(self, dims: dict[str, int]) -> None:
        existing = self.dims()
        if existing is not None:
            _check_dims(existing, dims, self.collection)
            return
        qe = self.qe
        config = qe.EdgeConfig(
            vectors={
                name: qe.EdgeVectorParams(size=size, distance=qe.Distance.Cosine)
                for name, size in dims.items()
            },
            sparse_vectors={SPARSE_CHANNEL: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        self.shard = qe.EdgeShard.create(str(self.path), config)
        self.update_metadata({"dims": dims})

    def dims(self) -> dict[str, int] | None:
        return self.metadata().get("dims") if self.shard is not None else None

    def _require(self):
        if self.shard is None:
            raise StoreError(
                f"collection '{self.collection}' does not exist in {self.db}: run `adsearch ingest`"
            )
        return self.shard

    def _vector(self, value):
        return self.qe.SparseVector(value.indices, value.values) if isinstance(value, SparseVec) else value

    def upsert(self, points: list[PointData]) -> None:
        if not points:
            return
        qe = self.qe
        self._require().update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(p.id, {k: self._vector(v) for k, v in p.vectors.items()}, p.payload)
                    for p in points
                ]
            )
        )

    def _records(self, ids: list[str], with_payload: bool, with_vector: bool) -> list:
        if self.shard is None or not ids:
            return []
        return self.shard.retrieve(ids, with_payload=with_payload, with_vector=with_vector)

    def set_payload(self, point_id: str, payload: dict) -> None:
        # Edge 0.9 has no set-payload operation: rewrite the point, keeping its vectors.
        records = self._require().retrieve([point_id], with_payload=True, with_vector=True)
        if not records:
            raise StoreError(f"no point {point_id}")
        merged = {**(records[0].payload or {}), **payload}
        self.shard.update(
            self.qe.UpdateOperation.upsert_points([self.qe.Point(point_id, records[0].vector or {}, merged)])
        )

    def delete(self, ids: list[str]) -> None:
        if ids:
            self._require().update(self.qe.UpdateOperation.delete_points(ids))

    def count(self, with_vector: str | None = None) -> int:
        if self.shard is None:
            return 0
        qe = self.qe
        flt = qe.Filter(must=[qe.HasVectorCondition(with_vector)]) if with_vector else None
        return self.shard.count(qe.CountRequest(exact=True, filter=flt))

    def _scroll(self, batch: int, fields: list[str] | None, with_vector: bool) -> Iterator:
        if self.shard is None:
            return
        selector = self.qe.PayloadSelector.Include(fields) if fields else True
        offset = None
        while True:
            records, offset = self.shard.scroll(
                self.qe.ScrollRequest(
                    offset=offset, limit=batch, with_payload=selector, with_vector=with_vector
                )
            )
            yield from records
            if offset is None:
                return

    def search(self, queries, weights, limit, offset, prefetch_limit, rrf_k) -> SearchResult:
        qe = self.qe
        shard = self._require()
        nearest = [qe.Query.Nearest(self._vector(q.vector), using=q.channel) for q in queries]
        hit_payload = qe.PayloadSelector.Exclude(HIT_PAYLOAD_EXCLUDE)
        if len(queries) == 1:
            fused = qe.QueryRequest(limit=limit, offset=offset, query=nearest[0], with_payload=hit_payload)
        else:
            fused = qe.QueryRequest(
                limit=limit,
                offset=offset,
                prefetches=[qe.Prefetch(limit=prefetch_limit, query=n) for n in nearest],
                query=qe.Fusion.Rrf(k=rrf_k, weights=weights),
                with_payload=hit_payload,
            )
        singles = [qe.QueryRequest(limit=prefetch_limit, query=n, with_payload=False) for n in nearest]
        results = shard.query_batch(qe.QueryBatchRequest([fused, *singles]))
        return _search_result(queries, results)

    def metadata(self) -> dict:
        return json.loads(self.meta_path.read_text()) if self.meta_path.exists() else {}

    def update_metadata(self, values: dict) -> None:
        _write_json_atomically(self.meta_path, {**self.metadata(), **values})

    def optimize(self) -> None:
        """Build indexes and merge segments (done once after an ingest)."""
        if self.shard is not None:
            self.shard.optimize()

    def flush(self) -> None:
        if self.shard is not None:
            self.shard.flush()

    def close(self) -> None:
        if self.shard is not None:
            self.shard.flush()
            self.shard.close()
            self.shard = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None


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


def _check_dims(existing: dict[str, int], wanted: dict[str, int], collection: str) -> None:
    for name, size in wanted.items():
        if existing.get(name) != size:
            raise StoreError(
                f"collection '{collection}' stores {name} vectors of size {existing.get(name)}, "
                f"but the current model gives {size}: use another --collection or --db, or the model "
                "the collection was built with"
            )


def _plain_vectors(vectors: dict | None) -> dict[str, list[float] | SparseVec]:
    """Backend vector objects -> lists and SparseVec."""
    out: dict[str, list[float] | SparseVec] = {}
    for name, value in (vectors or {}).items():
        if hasattr(value, "indices"):
            out[name] = SparseVec(list(value.indices), list(value.values))
        else:
            out[name] = list(value)
    return out


def _search_result(queries: list[ChannelQuery], results: list[list]) -> SearchResult:
    def hits(points) -> list[ScoredHit]:
        return [ScoredHit(str(p.id), float(p.score), dict(p.payload) if p.payload else None) for p in points]

    return SearchResult(
        fused=hits(results[0]),
        per_channel={q.channel: hits(r) for q, r in zip(queries, results[1:], strict=True)},
    )


# --------------------------------------------------------------------------- qdrant-client (server)


class ClientStore(Store):
    """A collection behind qdrant-client: a Qdrant server/cluster, or qdrant-client's local mode."""

    def __init__(
        self, client, collection: str, shard_number: int | None = None, replication_factor: int | None = None
    ):
        from qdrant_client import models

        self.client = client
        self.models = models
        self.collection = collection
        self.shard_number = shard_number
        self.replication_factor = replication_factor

    @classmethod
    def from_settings(cls, client, settings: Settings) -> ClientStore:
        """The store for `settings.collection`, created with the settings' sharding when new."""
        return cls(client, settings.collection, settings.shard_number, settings.replication_factor)

    def _exists(self) -> bool:
        return self.client.collection_exists(self.collection)

    def ensure_collection(self, dims: dict[str, int]) -> None:
        existing = self.dims()
        if existing is not None:
            _check_dims(existing, dims, self.collection)
            return
        m = self.models
        self.client.create_collection(
            self.collection,
            vectors_config={n: m.VectorParams(size=s, distance=m.Distance.COSINE) for n, s in dims.items()},
            sparse_vectors_config={SPARSE_CHANNEL: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            shard_number=self.shard_number,
            replication_factor=self.replication_factor,
            metadata={"dims": dims},
        )

    def dims(self) -> dict[str, int] | None:
        if not self._exists():
            return None
        vectors = self.client.get_collection(self.collection).config.params.vectors
        return {name: params.size for name, params in vectors.items()}

    def _vector(self, value):
        if isinstance(value, SparseVec):
            return self.models.SparseVector(indices=value.indices, values=value.values)
        return value

    def upsert(self, points: list[PointData]) -> None:
        if points:
            self.client.upsert(
                self.collection,
                points=[
                    self.models.PointStruct(
                        id=p.id, vector={k: self._vector(v) for k, v in p.vectors.items()}, payload=p.payload
                    )
                    for p in points
                ],
                wait=True,
            )

    def _records(self, ids: list[str], with_payload: bool, with_vector: bool) -> list:
        if not ids or not self._exists():
            return []
        return self.client.retrieve(self.collection, ids, with_payload=with_payload, with_vectors=with_vector)

    def set_payload(self, point_id: str, payload: dict) -> None:
        self.client.set_payload(self.collection, payload=payload, points=[point_id], wait=True)

    def delete(self, ids: list[str]) -> None:
        if ids:
            self.client.delete(
                self.collection, points_selector=self.models.PointIdsList(points=ids), wait=True
            )

    def count(self, with_vector: str | None = None) -> int:
        if not self._exists():
            return 0
        m = self.models
        flt = m.Filter(must=[m.HasVectorCondition(has_vector=with_vector)]) if with_vector else None
        return self.client.count(self.collection, count_filter=flt, exact=True).count

    def _scroll(self, batch: int, fields: list[str] | None, with_vector: bool) -> Iterator:
        if not self._exists():
            return
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection,
                limit=batch,
                offset=offset,
                with_payload=fields or True,
                with_vectors=with_vector,
            )
            yield from records
            if offset is None:
                return

    def search(self, queries, weights, limit, offset, prefetch_limit, rrf_k) -> SearchResult:
        m = self.models
        hit_payload = m.PayloadSelectorExclude(exclude=HIT_PAYLOAD_EXCLUDE)
        if not self._exists():
            raise StoreError(f"collection '{self.collection}' does not exist: run `adsearch ingest`")
        if len(queries) == 1:
            fused = m.QueryRequest(
                query=self._vector(queries[0].vector),
                using=queries[0].channel,
                limit=limit,
                offset=offset,
                with_payload=hit_payload,
            )
        else:
            fused = m.QueryRequest(
                prefetch=[
                    m.Prefetch(query=self._vector(q.vector), using=q.channel, limit=prefetch_limit)
                    for q in queries
                ],
                query=m.RrfQuery(rrf=m.Rrf(k=rrf_k, weights=weights)),
                limit=limit,
                offset=offset,
                with_payload=hit_payload,
            )
        singles = [
            m.QueryRequest(
                query=self._vector(q.vector), using=q.channel, limit=prefetch_limit, with_payload=False
            )
            for q in queries
        ]
        responses = self.client.query_batch_points(self.collection, requests=[fused, *singles])
        return _search_result(queries, [r.points for r in responses])

    def metadata(self) -> dict:
        if not self._exists():
            return {}
        return dict(self.client.get_collection(self.collection).config.metadata or {})

    def update_metadata(self, values: dict) -> None:
        self.client.update_collection(self.collection, metadata=values)

    def close(self) -> None:
        self.client.close()


def open_store(settings: Settings) -> Store:
    """The store the settings name: a Qdrant server when `qdrant_url` is set, else the embedded one."""
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        try:
            client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=30)
            client.get_collections()
        except Exception as exc:  # noqa: BLE001 (any connection failure gets the same clear message)
            raise StoreError(f"cannot reach Qdrant at {settings.qdrant_url}: {exc}") from exc
        return ClientStore.from_settings(client, settings)
    return EdgeStore(settings.db, settings.collection)
