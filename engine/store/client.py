"""`ClientStore`: the collection on a Qdrant server or cluster, through qdrant-client (tests drive
it through qdrant-client's local mode, which speaks the same client API)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

from engine.config import Settings
from engine.errors import StoreError
from engine.schema import SPARSE_CHANNEL, SparseVec
from engine.store.base import (
    HIT_PAYLOAD_EXCLUDE,
    HNSW_EF,
    INDEX_PARAMS,
    INDEX_TYPES,
    OVERSAMPLING,
    QUANTILE,
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


class ClientFilterParts(FilterParts):
    """qdrant-client's filter models."""

    def __init__(self, models):
        self.m = models

    def match(self, key, value):
        return self.m.FieldCondition(key=key, match=self.m.MatchValue(value=value))

    def match_any(self, key, values):
        return self.m.FieldCondition(key=key, match=self.m.MatchAny(any=values))

    def range(self, key, bounds, is_datetime):
        kind = self.m.DatetimeRange if is_datetime else self.m.Range
        return self.m.FieldCondition(key=key, range=kind(**bounds))

    def has_vector(self, name):
        return self.m.HasVectorCondition(has_vector=name)

    def phrase(self, key, text):
        return self.m.FieldCondition(key=key, match=self.m.MatchPhrase(phrase=text))

    def word(self, key, text):
        return self.m.FieldCondition(key=key, match=self.m.MatchText(text=text))

    def combine(self, must, must_not):
        return self.m.Filter(must=must or None, must_not=must_not or None)

    def any_of(self, conditions):
        return self.m.Filter(should=conditions)


class ClientStore(Store):
    """A collection behind qdrant-client: a Qdrant server/cluster, or qdrant-client's local mode.

    With `quantize`, a new collection is laid out as EdgeStore lays out its own: int8 dense vectors
    in RAM, float32 originals on disk, searches rescored with the originals (qdrant-client's local
    mode accepts the settings and searches exactly)."""

    def __init__(
        self,
        client,
        collection: str,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        quantize: bool = True,
    ):
        from qdrant_client import models

        self.client = client
        self.models = models
        self.collection = collection
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self.quantize = quantize
        self.oversampling = OVERSAMPLING
        self.hnsw_ef: int | None = HNSW_EF

    @classmethod
    def from_settings(cls, client, settings: Settings) -> ClientStore:
        """The store for `settings.collection`, created with the settings' sharding and layout when new."""
        store = cls(
            client, settings.collection, settings.shard_number, settings.replication_factor, settings.quantize
        )
        store.hnsw_ef = settings.hnsw_ef
        return store

    def _exists(self) -> bool:
        return self.client.collection_exists(self.collection)

    def ensure_collection(self, dims: dict[str, int]) -> None:
        existing = self.dims()
        m = self.models
        if existing is not None:
            check_dims(existing, dims, self.collection)
            for name, size in missing_vectors(existing, dims).items():  # made before this vector existed
                dense = m.DenseVectorConfig(size=size, distance=m.Distance.COSINE)
                config = m.DenseVectorNameConfig(dense=dense)
                self.client.create_vector_name(self.collection, name, config, wait=True)
            return
        quantized = None
        if self.quantize:
            scalar = m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=QUANTILE, always_ram=True)
            quantized = m.ScalarQuantization(scalar=scalar)
        self.client.create_collection(
            self.collection,
            vectors_config={
                n: m.VectorParams(size=s, distance=m.Distance.COSINE, on_disk=self.quantize or None)
                for n, s in dims.items()
            },
            sparse_vectors_config={SPARSE_CHANNEL: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            quantization_config=quantized,  # every dense vector, also one added later (creative)
            shard_number=self.shard_number,
            replication_factor=self.replication_factor,
            metadata={"dims": dims, "quantization": "int8" if self.quantize else None},
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

    def _filter(self, where, with_vector: str | None = None):
        return build_filter(list(where), ClientFilterParts(self.models), with_vector)

    def count(self, with_vector: str | None = None, where=(), exact: bool = True) -> int:
        if not self._exists():
            return 0
        return self.client.count(
            self.collection, count_filter=self._filter(where, with_vector), exact=exact
        ).count

    def facet(self, field: str, where=(), limit: int = 20) -> list[tuple[object, int]]:
        if not self._exists():
            return []
        response = self.client.facet(
            self.collection, key=field, facet_filter=self._filter(where), limit=limit, exact=True
        )
        return [(hit.value, hit.count) for hit in response.hits]

    def _ordered(self, where, order_by, descending, limit) -> list[tuple[str, dict]]:
        if not self._exists():
            return []
        m = self.models
        direction = m.Direction.DESC if descending else m.Direction.ASC
        records, _ = self.client.scroll(
            self.collection,
            scroll_filter=self._filter(where),
            limit=limit,
            order_by=m.OrderBy(key=order_by, direction=direction),
            with_payload=m.PayloadSelectorExclude(exclude=HIT_PAYLOAD_EXCLUDE),
        )
        return [(str(r.id), dict(r.payload or {})) for r in records]

    def ensure_indexes(self, fields: dict[str, str]) -> None:
        if not self._exists():
            return
        for name, kind in fields.items():
            index = self._index_schema(name, kind)
            if index is None:
                continue
            with warnings.catch_warnings():  # local mode: "indexes have no effect here" (harmless)
                warnings.simplefilter("ignore", UserWarning)
                self.client.create_payload_index(
                    self.collection, field_name=name, field_schema=index, wait=True
                )

    def _index_schema(self, name: str, kind: str):
        m = self.models
        if kind == "text":  # words, lower-cased, with positions for phrases
            return m.TextIndexParams(
                type="text", tokenizer=m.TokenizerType.WORD, lowercase=True, phrase_matching=True
            )
        if kind not in INDEX_TYPES:
            return None
        if payload_links(name, kind):
            return getattr(m.PayloadSchemaType, INDEX_TYPES[kind].upper())
        extra = {"lookup": True, "range": True} if kind == "integer" else {}
        return getattr(m, INDEX_PARAMS[kind])(type=INDEX_TYPES[kind].lower(), enable_hnsw=False, **extra)

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

    def _query(self, q):
        vector = self._vector(q.vector)
        if not q.recommends:
            return vector
        m = self.models
        examples = m.RecommendInput(
            positive=[vector, *map(self._vector, q.positives)],
            negative=[self._vector(v) for v in q.negatives],
            strategy=m.RecommendStrategy.BEST_SCORE,
        )
        return m.RecommendQuery(recommend=examples)

    def _params(self, channel: str, exact: bool):
        return search_params(self.models, channel, exact, self.oversampling, self.hnsw_ef)

    def search(
        self, queries, weights, limit, offset, prefetch_limit, rrf_k, where=(), diversity=None, exact=False
    ) -> SearchResult:
        m = self.models
        if not self._exists():
            raise StoreError(f"collection '{self.collection}' does not exist: run `adsearch ingest`")
        flt = self._filter(where)
        if len(queries) == 1:
            q = queries[0]
            ranking = {"query": self._query(q), "using": q.channel, "params": self._params(q.channel, exact)}
        else:
            ranking = {
                "prefetch": [
                    m.Prefetch(
                        query=self._query(q),
                        using=q.channel,
                        limit=prefetch_limit,
                        filter=flt,
                        params=self._params(q.channel, exact),
                    )
                    for q in queries
                ],
                "query": m.RrfQuery(rrf=m.Rrf(k=rrf_k, weights=weights)),
            }
        diverse_in = mmr_query(queries) if diversity else None
        if diverse_in is not None:
            pool = max(prefetch_limit, limit + offset)
            mmr = m.NearestQuery(
                nearest=self._vector(diverse_in.vector), mmr=m.Mmr(diversity=diversity, candidates_limit=pool)
            )
            candidates = m.Prefetch(limit=pool, filter=flt, **ranking)
            ranking = {
                "prefetch": [candidates],
                "query": mmr,
                "using": diverse_in.channel,
                "params": self._params(diverse_in.channel, exact),
            }
        hit_payload = m.PayloadSelectorExclude(exclude=HIT_PAYLOAD_EXCLUDE)
        fused = m.QueryRequest(limit=limit, offset=offset, with_payload=hit_payload, filter=flt, **ranking)
        singles = [
            m.QueryRequest(
                query=self._query(q),
                using=q.channel,
                limit=prefetch_limit,
                with_payload=False,
                filter=flt,
                params=self._params(q.channel, exact),
            )
            for q in queries
        ]
        responses = self.client.query_batch_points(self.collection, requests=[fused, *singles])
        return search_result(queries, [r.points for r in responses])

    def metadata(self) -> dict:
        if not self._exists():
            return {}
        return dict(self.client.get_collection(self.collection).config.metadata or {})

    def update_metadata(self, values: dict) -> None:
        self.client.update_collection(self.collection, metadata=values)

    def close(self) -> None:
        self.client.close()
