"""`EdgeStore`: the collection in Qdrant Edge, the Qdrant engine in-process, on a local folder."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from engine.errors import StoreError
from engine.schema import SPARSE_CHANNEL, SparseVec
from engine.store.base import (
    HIT_PAYLOAD_EXCLUDE,
    HNSW_EF,
    HNSW_EF_CONSTRUCT,
    HNSW_M,
    INDEX_PARAMS,
    INDEX_TYPES,
    OVERSAMPLING,
    QUANTILE,
    SIDECAR_FIELDS,
    FilterParts,
    PointData,
    SearchResult,
    Store,
    build_filter,
    check_dims,
    missing_vectors,
    mmr_query,
    payload_links,
    search_params,
    search_result,
)
from engine.store.sidecar import Sidecar


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

    def any_of(self, conditions):
        return self.qe.Filter(should=conditions)


class EdgeStore(Store):
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
        # a new shard's indexing threshold in KB (Qdrant's default when None); tests make it tiny so
        # a small collection gets its HNSW graph and int8 vectors
        self.indexing_threshold_kb: int | None = None
        self.collection = collection
        self.db = Path(db)
        self.db.mkdir(parents=True, exist_ok=True)
        self.path = self.db / collection
        self.meta_path = self.db / f"{collection}.meta.json"
        self._lock = _lock_folder(self.db)
        self.shard = qe.EdgeShard.load(str(self.path)) if self._exists() else None
        self.sidecar = Sidecar(self.db / f"{collection}.sidecar.sqlite")

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
        self.shard = qe.EdgeShard.create(str(self.path), self._config(dims))
        self.update_metadata({"dims": dims, "quantization": "int8" if self.quantize else None})

    def _config(self, dims: dict[str, int]):
        """A new shard's layout: float32 originals on disk and int8 copies in RAM when quantised."""
        qe = self.qe
        quantized = None
        if self.quantize:
            quantized = qe.ScalarQuantizationConfig(
                qe.ScalarType.Int8, quantile=QUANTILE, memory=qe.Memory.Pinned
            )
        originals = qe.Memory.Cold if self.quantize else None
        return qe.EdgeConfig(
            vectors={
                name: qe.EdgeVectorParams(size=size, distance=qe.Distance.Cosine, memory=originals)
                for name, size in dims.items()
            },
            sparse_vectors={SPARSE_CHANNEL: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            quantization_config=quantized,  # every dense vector, also one added later (creative)
            # Qdrant's defaults, but every core builds the graphs: `optimize` runs when an ingest has
            # finished writing, and auto leaves one of 2 cores idle (index build 1.3x faster on 2)
            hnsw_config=qe.HnswIndexConfig(
                m=HNSW_M,
                ef_construct=HNSW_EF_CONSTRUCT,
                full_scan_threshold=10_000,
                max_indexing_threads=os.cpu_count() or 0,
            ),  # fmt: skip
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb),
        )

    def dims(self) -> dict[str, int] | None:
        return self.metadata().get("dims") if self.shard is not None else None

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
            elif payload_links(name, kind):
                schema = getattr(qe.PayloadSchemaType, INDEX_TYPES[kind])
            elif kind == "integer":
                schema = qe.IntegerIndexParams(lookup=True, range=True, enable_hnsw=False)
            else:
                schema = getattr(qe, INDEX_PARAMS[kind])(enable_hnsw=False)
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

    def _params(self, channel: str, exact: bool):
        return search_params(self.qe, channel, exact, self.oversampling, self.hnsw_ef)

    def search(
        self, queries, weights, limit, offset, prefetch_limit, rrf_k, where=(), diversity=None, exact=False
    ) -> SearchResult:
        qe = self.qe
        shard = self._require()
        flt = self._filter(where)
        scoring = [self._query(q) for q in queries]
        params = [self._params(q.channel, exact) for q in queries]
        if len(queries) == 1:
            ranking = {"query": scoring[0], "params": params[0]}
        else:
            ranking = {
                "prefetches": [
                    qe.Prefetch(limit=prefetch_limit, query=s, params=p, filter=flt)
                    for s, p in zip(scoring, params, strict=True)
                ],
                "query": qe.Fusion.Rrf(k=rrf_k, weights=weights),
            }
        diverse_in = mmr_query(queries) if diversity else None
        if diverse_in is not None:
            pool = max(prefetch_limit, limit + offset)
            mmr = qe.Mmr(self._vector(diverse_in.vector), 1.0 - diversity, pool, using=diverse_in.channel)
            ranking = {
                "prefetches": [qe.Prefetch(limit=pool, filter=flt, **ranking)],
                "query": mmr,
                "params": self._params(diverse_in.channel, exact),
            }
        hit_payload = qe.PayloadSelector.Exclude(HIT_PAYLOAD_EXCLUDE)
        fused = qe.QueryRequest(limit=limit, offset=offset, with_payload=hit_payload, filter=flt, **ranking)
        singles = [
            qe.QueryRequest(limit=prefetch_limit, query=s, params=p, with_payload=False, filter=flt)
            for s, p in zip(scoring, params, strict=True)
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
