"""How ClientStore reads by query: counts, facets, ordered pages and the one-batch search, every
part restricted by the shared filter builder (filter_builder.py) in qdrant-client's vocabulary."""

from __future__ import annotations

from functools import cache

from engine.errors import StoreError
from engine.store.base import HIT_PAYLOAD_EXCLUDE, SearchResult, mmr_query, search_params, search_result
from engine.store.filter_builder import FilterVocabulary, build_filter


@cache
def filter_vocabulary(models) -> FilterVocabulary:
    """qdrant-client's filter models: its own range classes, HasVectorCondition(has_vector=)."""
    return FilterVocabulary.of(
        models,
        models.Range,
        models.DatetimeRange,
        has_vector=lambda name: models.HasVectorCondition(has_vector=name),
    )


class ClientQueries:
    """ClientStore's queries (a part of ClientStore, client.py: uses its `client`, `models`,
    `collection`, `oversampling`, `hnsw_ef`, `_exists` and `_vector`)."""

    def _filter(self, where, with_vector: str | None = None):
        return build_filter(list(where), filter_vocabulary(self.models), with_vector)

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
