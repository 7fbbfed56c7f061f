"""`EdgeStore`: the collection in Qdrant Edge, the Qdrant engine in-process, on a local folder."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from engine.errors import StoreError
from engine.store.base import (
    HIT_PAYLOAD_EXCLUDE,
    INDEX_TYPES,
    SPARSE_CHANNEL,
    FilterParts,
    PointData,
    SearchResult,
    SparseVec,
    Store,
    build_filter,
    check_dims,
    missing_vectors,
    mmr_query,
    search_result,
)


class EdgeFilterParts(FilterParts):
    """Qdrant Edge's filter objects."""

    def __init__(self, qe):
        self.qe = qe

    def match(self, key, value):
        return self.qe.FieldCondition(key, match=self.qe.MatchValue(value))

    def match_any(self, key, values):
        return self.qe.FieldCondition(key, match=self.qe.MatchAny(values))

    def range(self, key, bounds, is_datetime):
        kind = self.qe.RangeDateTime if is_datetime else self.qe.RangeFloat
        return self.qe.FieldCondition(key, range=kind(**bounds))

    def has_vector(self, name):
        return self.qe.HasVectorCondition(name)

    def phrase(self, key, text):
        return self.qe.FieldCondition(key, match=self.qe.MatchPhrase(text))

    def word(self, key, text):
        return self.qe.FieldCondition(key, match=self.qe.MatchText(text))

    def combine(self, must, must_not):
        return self.qe.Filter(must=must or None, must_not=must_not or None)


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
        qe = self.qe
        if existing is not None:
            check_dims(existing, dims, self.collection)
            added = missing_vectors(existing, dims)
            for name, size in added.items():  # a collection made before this vector existed
                self._require().update(qe.UpdateOperation.create_dense_vector(name, size, qe.Distance.Cosine))
            if added:
                self.update_metadata({"dims": {**existing, **added}})
            return
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

    def _filter(self, where, with_vector: str | None = None):
        return build_filter(list(where), EdgeFilterParts(self.qe), with_vector)

    def count(self, with_vector: str | None = None, where=(), exact: bool = True) -> int:
        if self.shard is None:
            return 0
        return self.shard.count(self.qe.CountRequest(exact=exact, filter=self._filter(where, with_vector)))

    def facet(self, field: str, where=(), limit: int = 20) -> list[tuple[object, int]]:
        if self.shard is None:
            return []
        request = self.qe.FacetRequest(field, limit=limit, exact=True, filter=self._filter(where))
        return [(hit.value, hit.count) for hit in self.shard.facet(request).hits]

    def _ordered(self, where, order_by, descending, limit) -> list[tuple[str, dict]]:
        if self.shard is None:
            return []
        qe = self.qe
        direction = qe.Direction.Desc if descending else qe.Direction.Asc
        records, _ = self.shard.scroll(
            qe.ScrollRequest(
                limit=limit,
                filter=self._filter(where),
                order_by=qe.OrderBy(order_by, direction=direction),
                with_payload=qe.PayloadSelector.Exclude(HIT_PAYLOAD_EXCLUDE),
            )
        )
        return [(str(r.id), dict(r.payload or {})) for r in records]

    def ensure_indexes(self, fields: dict[str, str]) -> None:
        done = self.metadata().get("indexes", {})
        todo = {name: kind for name, kind in fields.items() if done.get(name) != kind and kind in INDEX_TYPES}
        qe = self.qe
        for name, kind in todo.items():
            if kind == "text":  # words, lower-cased, with positions for phrases
                schema = qe.TextIndexParams(
                    tokenizer=qe.TokenizerType.Word, lowercase=True, phrase_matching=True
                )
            else:
                schema = getattr(qe.PayloadSchemaType, INDEX_TYPES[kind])
            self._require().update(qe.UpdateOperation.create_field_index(name, schema))
        if todo:
            self.update_metadata({"indexes": {**done, **todo}})

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

    def _query(self, q):
        vector = self._vector(q.vector)
        if not q.recommends:
            return self.qe.Query.Nearest(vector, using=q.channel)
        examples = self.qe.RecommendQuery(
            [vector, *map(self._vector, q.positives)], [self._vector(v) for v in q.negatives]
        )
        return self.qe.Query.RecommendBestScore(examples, using=q.channel)

    def search(
        self, queries, weights, limit, offset, prefetch_limit, rrf_k, where=(), diversity=None
    ) -> SearchResult:
        qe = self.qe
        shard = self._require()
        flt = self._filter(where)
        scoring = [self._query(q) for q in queries]
        if len(queries) == 1:
            ranking = {"query": scoring[0]}
        else:
            ranking = {
                "prefetches": [qe.Prefetch(limit=prefetch_limit, query=s, filter=flt) for s in scoring],
                "query": qe.Fusion.Rrf(k=rrf_k, weights=weights),
            }
        diverse_in = mmr_query(queries) if diversity else None
        if diverse_in is not None:
            pool = max(prefetch_limit, limit + offset)
            mmr = qe.Mmr(self._vector(diverse_in.vector), 1.0 - diversity, pool, using=diverse_in.channel)
            ranking = {"prefetches": [qe.Prefetch(limit=pool, filter=flt, **ranking)], "query": mmr}
        hit_payload = qe.PayloadSelector.Exclude(HIT_PAYLOAD_EXCLUDE)
        fused = qe.QueryRequest(limit=limit, offset=offset, with_payload=hit_payload, filter=flt, **ranking)
        singles = [
            qe.QueryRequest(limit=prefetch_limit, query=s, with_payload=False, filter=flt) for s in scoring
        ]
        results = shard.query_batch(qe.QueryBatchRequest([fused, *singles]))
        return search_result(queries, results)

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
