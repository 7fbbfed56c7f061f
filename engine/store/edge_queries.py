"""How EdgeStore reads by query: counts, facets, ordered pages and the one-batch search, every
part restricted by the shared filter builder (filter_builder.py) in Qdrant Edge's vocabulary."""

from __future__ import annotations

from functools import cache

from engine.store.base import HIT_PAYLOAD_EXCLUDE, SearchResult, mmr_query, search_params, search_result
from engine.store.filter_builder import FilterVocabulary, build_filter


@cache
def filter_vocabulary(qe) -> FilterVocabulary:
    """Qdrant Edge's filter constructors: its own range classes, HasVectorCondition(vector=)."""
    return FilterVocabulary.of(
        qe, qe.RangeFloat, qe.RangeDateTime, has_vector=lambda name: qe.HasVectorCondition(vector=name)
    )


class EdgeQueries:
    """EdgeStore's queries (a part of EdgeStore, edge.py: uses its `qe`, `shard`, `oversampling`,
    `hnsw_ef`, `_require` and `_vector`)."""

    def _filter(self, where, with_vector: str | None = None):
        return build_filter(list(where), filter_vocabulary(self.qe), with_vector)

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
        """Each channel is searched once, `prefetch_limit` deep (its ranking is also its explanation);
        then Qdrant fuses those rankings, its prefetches scoring only the ids each channel found, by
        their vectors (a few hundred points, no graph): the graph searches are not run twice."""
        qe = self.qe
        shard = self._require()
        flt = self._filter(where)
        scoring = [self._query(q) for q in queries]
        singles = [
            qe.QueryRequest(
                limit=prefetch_limit,
                query=s,
                params=self._params(q.channel, exact),
                with_payload=False,
                filter=flt,
            )
            for q, s in zip(queries, scoring, strict=True)
        ]
        found = shard.query_batch(qe.QueryBatchRequest(singles))
        rankings = [self._among(q, s, points) for q, s, points in zip(queries, scoring, found, strict=True)]
        if len(queries) == 1:
            ranking = rankings[0]
        else:
            ranking = {
                "prefetches": [qe.Prefetch(limit=prefetch_limit, **r) for r in rankings],
                "query": qe.Fusion.Rrf(k=rrf_k, weights=weights),
            }
        diverse_in = mmr_query(queries) if diversity else None
        if diverse_in is not None:
            pool = max(prefetch_limit, limit + offset)
            mmr = qe.Mmr(self._vector(diverse_in.vector), 1.0 - diversity, pool, using=diverse_in.channel)
            ranking = {
                "prefetches": [qe.Prefetch(limit=pool, **ranking)],
                "query": mmr,
                "params": self._params(diverse_in.channel, exact),
            }
        hit_payload = qe.PayloadSelector.Exclude(HIT_PAYLOAD_EXCLUDE)
        fused = shard.query(qe.QueryRequest(limit=limit, offset=offset, with_payload=hit_payload, **ranking))
        return search_result(queries, [fused, *found])

    def _among(self, query, scoring, found) -> dict:
        """A channel's query restricted to the points its search found, scored exactly (the float32
        originals, as the rescored search scored them): the same ranking, cheaply."""
        qe = self.qe
        ids = qe.Filter(must=[qe.HasIdCondition({point.id for point in found})])
        return {"query": scoring, "params": self._params(query.channel, True), "filter": ids}
