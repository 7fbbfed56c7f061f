"""How EdgeStore reads by query: counts, facets, ordered pages and the one-batch search, every
part restricted by the shared filter builder (filter_builder.py) in Qdrant Edge's vocabulary."""

from __future__ import annotations

from functools import cache

from engine.store.base import (
    HIT_PAYLOAD_EXCLUDE,
    ScoredHit,
    SearchResult,
    mmr_query,
    scored_hits,
    search_params,
    search_result,
)
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
        """One Qdrant batch: the fused query (each channel a prefetch, weighted RRF; MMR on top when
        asked) and each channel alone, for the ranks every hit explains. A channel searched alone
        is searched once: its ranking is the fused one."""
        qe = self.qe
        shard = self._require()
        flt = self._filter(where)
        scoring = [self._query(q) for q in queries]
        params = [self._params(q.channel, exact) for q in queries]
        if len(queries) == 1 and not diversity:
            return self._alone(queries[0], scoring[0], params[0], limit, offset, prefetch_limit, flt)
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

    def _alone(self, query, scoring, params, limit, offset, depth, flt) -> SearchResult:
        """One channel: searched once, `depth` deep (at least the page); the page's hits get their
        payloads by id."""
        qe = self.qe
        wanted = max(depth, limit + offset)
        request = qe.QueryRequest(limit=wanted, query=scoring, params=params, with_payload=False, filter=flt)
        ranked = self.shard.query(request)
        page = ranked[offset : offset + limit]
        hit_payload = qe.PayloadSelector.Exclude(HIT_PAYLOAD_EXCLUDE)
        records = self.shard.retrieve([p.id for p in page], with_payload=hit_payload, with_vector=False)
        payloads = {str(r.id): dict(r.payload or {}) for r in records}
        fused = [ScoredHit(str(p.id), float(p.score), payloads.get(str(p.id))) for p in page]
        return SearchResult(fused, {query.channel: scored_hits(ranked[:depth])})
