"""Search: embed the query once per channel, one Qdrant batch call (prefetch per channel + RRF
fusion for the ranking, each channel alone for the explanation), hits with per-channel ranks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PIL import Image

from engine.channels import IMAGE_OFF_NOTE, channel, fused_names, modes
from engine.errors import NotFound, SearchError
from engine.filters import Clause
from engine.ingest.ocr import usable_ocr
from engine.search.browse import matching_total
from engine.search.encoding import QueryCache, QueryEncoder, elapsed_ms
from engine.search.feedback import with_examples
from engine.search.fusion import LOOK, FusionPlan, Rule, adaptive_plan, fixed_plan, stand_out
from engine.search.results import Hit, SearchResponse, explained_hits
from engine.search.snippets import query_terms
from engine.settings import Settings
from engine.store import ChannelQuery, Store
from ocr_text import read_text

if TYPE_CHECKING:
    from engine.models.encoders import Encoders


def fusion_weights(settings: Settings) -> dict[str, float]:
    """The fused channels' default weights (ADSEARCH_WEIGHTS or tuned, unnamed channels 1) checked
    against the registered channels; SearchError naming an unknown one, or all of them at 0."""
    names = fused_names()
    unknown = [name for name in settings.weights if name not in names]
    if unknown:
        raise SearchError(
            f"ADSEARCH_WEIGHTS: unknown channel(s) {', '.join(unknown)}; known: {', '.join(names)}"
        )
    weights = {name: settings.weights.get(name, 1.0) for name in names}
    if not any(weights.values()):
        raise SearchError("ADSEARCH_WEIGHTS: every channel has weight 0: give at least one a weight > 0")
    return weights


class Searcher:
    """Answers queries against one store with one set of encoders."""

    def __init__(
        self, settings: Settings, encoders: Encoders, store: Store, query_cache: QueryCache | None = None
    ):
        self.settings = settings
        self.weights = fusion_weights(settings)
        self.encoders = encoders
        self.store = store
        self._searchable: dict[str, bool] = {}  # channel -> usable here, asked once
        self.query_encoder = QueryEncoder(encoders, query_cache)

    def searchable(self, name: str) -> bool:
        """Whether a channel can be searched with these encoders over this store (the image channel
        needs CLIP at ingest and at query time)."""
        if name not in self._searchable:
            self._searchable[name] = channel(name).searchable(self.encoders, self.store)
        return self._searchable[name]

    def available(self, mode: str) -> list[str]:
        """Channels a mode can use right now."""
        known = modes()
        if mode not in known:
            raise SearchError(f"unknown mode '{mode}': use one of {', '.join(known)}")
        return [c for c in known[mode] if self.searchable(c)]

    def channels_for(self, mode: str, notes: list[str] | None = None) -> list[str]:
        """Channels a mode will use, or SearchError when it can use none; notes say what is off."""
        notes = notes if notes is not None else []
        channels = self.available(mode)
        off = [c for c in modes()[mode] if c not in channels]
        if not channels:
            raise SearchError(channel(off[0]).off_reason(self.encoders))
        if off:
            notes.append(IMAGE_OFF_NOTE if off == ["image"] else f"channels off: {', '.join(off)}")
        return channels

    def search(
        self,
        query: str | None = None,
        image: Image.Image | None = None,
        mode: str = "hybrid",
        k: int = 10,
        offset: int = 0,
        weights: dict[str, float] | None = None,
        snippets: bool = True,
        where: Sequence[Clause] = (),
        diverse: bool = False,
        positive: Sequence[str] = (),
        negative: Sequence[str] = (),
        fusion: str | None = None,
    ) -> SearchResponse:
        """Run one query (text, image, or both) among the images matching `where`, and return ranked
        hits with explanations; without `snippets` the hits carry no matched OCR line (ranking-only
        callers such as evaluation). `diverse` re-ranks the fused candidates by maximal marginal
        relevance; `positive`/`negative` image ids turn each channel into a recommend query (more
        like these, unlike those), the examples themselves left out of the hits. `fusion` (default the
        `fusion` setting) says how the channels are weighed (engine.search.fusion)."""
        query = (query or "").strip()
        if not query and image is None:
            raise SearchError("empty query: give a text query or an image")
        image_only = [channel(c).image_only for c in modes().get(mode, ()) if channel(c).image_only]
        if image_only and image is None:
            raise SearchError(image_only[0])
        notes: list[str] = []
        channels = self.channels_for(mode, notes)
        timings: dict[str, float] = {}
        text = query
        if image is not None and not query and not image_only:
            start = time.perf_counter()
            text = read_text(image.convert("RGB"), usable_ocr(self.settings.ocr_settings())).text
            timings["ocr"] = elapsed_ms(start)
            if not text:
                channels = [c for c in channels if not channel(c).needs_text]
                notes.append("no text found in the query image: image channel only")
            if not channels:
                raise SearchError("the query image has no readable text and visual search is unavailable")
        queries = self.query_encoder.embed(channels, text, image, timings)
        queries = with_examples(self.store, queries, positive, negative)
        terms = query_terms(text) if snippets else None
        diversity = self.settings.mmr_diversity if diverse else None
        examples = set(positive) | set(negative)
        plan = self.fusion_plan(queries, text, weights, fusion or self.settings.fusion, where, timings)
        response = self._execute(
            queries, terms, k + len(examples), offset, plan.weights, timings, where, diversity
        )
        if examples:
            response.hits = [h for h in response.hits if h.id not in examples][:k]
            for rank, hit in enumerate(response.hits, offset + 1):
                hit.rank = rank
        response.hits = _above_floor(response.hits, channels)
        total, exact = matching_total(self.store, where) if where else (None, True)
        return SearchResponse(
            query or None, mode, response.channels, response.hits, notes, timings, total, exact, plan.public()
        )

    def fusion_plan(
        self, queries: list[ChannelQuery], text: str, given: dict[str, float] | None, fusion: str,
        where: Sequence[Clause], timings: dict[str, float],
    ) -> FusionPlan:  # fmt: skip
        """The weights this query is fused with: those given with it (they win), the fixed ones
        (`fusion` fixed, or nothing to choose between), or the adaptive rule's after a first look at the
        lexical channel's best hit (engine.search.fusion). The fixed weights are the base of both."""
        base = {q.channel: {**self.weights, **(given or {})}.get(q.channel, 1.0) for q in queries}
        if given:
            return fixed_plan(base, "given", "weights given with the query")
        lexical = next((q for q in queries if channel(q.channel).sparse and not q.recommends), None)
        if fusion != "adaptive" or len(queries) < 2 or lexical is None:
            return fixed_plan(base, "fixed", "fixed weights")
        start = time.perf_counter()
        # the best hit with its text, and the channel's LOOK best scores (no payload)
        first = self.store.search([lexical], [1.0], 1, 0, LOOK, self.settings.rrf_k, where)
        timings["first_look"] = elapsed_ms(start)
        best = (first.fused[0].payload or {}).get("ocr_text", "") if first.fused else None
        ratio = stand_out([hit.score for hit in first.per_channel[lexical.channel]])
        rule = Rule.of(self.settings)
        return adaptive_plan(base, [q.channel for q in queries], lexical.channel, text, best, rule, ratio)

    def similar(
        self, point_id: str, mode: str = "hybrid", k: int = 10, where: Sequence[Clause] = ()
    ) -> SearchResponse:
        """ "More like this": query with the stored vectors of an image, leaving the image itself out."""
        notes: list[str] = []
        channels = self.channels_for(mode, notes)
        stored = self.store.vectors(point_id)
        if stored is None:
            raise NotFound(f"no image with id {point_id}")
        queries = [ChannelQuery(c, stored[c]) for c in channels if c in stored]
        if not queries and any(channel(c).image_only for c in channels):
            raise SearchError(
                f"image {point_id} has no creative fingerprint yet: run `adsearch ingest` again"
            )
        if not queries:
            raise SearchError(f"image {point_id} has no vectors for mode '{mode}' (no OCR text?)")
        payload = self.store.retrieve([point_id]).get(point_id, {})
        terms = query_terms(payload.get("ocr_text", ""))
        response = self.recommend(queries, k, where, terms, leave_out={point_id})
        return SearchResponse(None, mode, response.channels, response.hits, notes, response.timings_ms)

    def recommend(
        self, queries: list[ChannelQuery], k: int, where: Sequence[Clause] = (),
        terms: list[str] | None = None, leave_out: set[str] | frozenset[str] = frozenset(),
    ) -> SearchResponse:  # fmt: skip
        """The top `k` for queries made of stored vectors (a nearest query per channel, or a recommend
        query when a ChannelQuery has positives), fused as every search is: the ids in `leave_out`
        (the examples themselves) dropped, ranks from 1, a lone channel's floor applied."""
        response = self._execute(queries, terms, k + len(leave_out), 0, None, {}, where)
        hits = [h for h in response.hits if h.id not in leave_out][:k]
        for rank, hit in enumerate(hits, 1):
            hit.rank = rank
        response.hits = _above_floor(hits, [q.channel for q in queries])
        return response

    def _execute(
        self,
        queries: list[ChannelQuery],
        terms: list[str] | None,
        k: int,
        offset: int,
        weights: dict[str, float] | None,
        timings: dict[str, float],
        where: Sequence[Clause] = (),
        diversity: float | None = None,
    ) -> SearchResponse:
        """One store call; turns fused + per-channel rankings into explained hits (snippets only
        when `terms` is not None)."""
        weights = {**self.weights, **(weights or {})}
        used = [weights.get(q.channel, 1.0) for q in queries]
        if len(queries) > 1 and not any(used):
            raise SearchError("every channel this search uses has weight 0: give one a weight > 0")
        start = time.perf_counter()
        result = self.store.search(
            queries,
            weights=used,
            limit=k,
            offset=offset,
            prefetch_limit=max(self.settings.prefetch_limit, k + offset),
            rrf_k=self.settings.rrf_k,
            where=where,
            diversity=diversity,
        )
        timings["qdrant"] = elapsed_ms(start)
        hits = explained_hits(result, terms, offset, diversified=diversity is not None)
        return SearchResponse(None, "", [q.channel for q in queries], hits, [], timings)


def _above_floor(hits: list[Hit], channels: list[str]) -> list[Hit]:
    """One channel searched alone that declares a floor (the same creative): only the hits at or
    above it ("no copies" is no hits)."""
    floor = channel(channels[0]).min_score if len(channels) == 1 else None
    return hits if floor is None else [h for h in hits if h.score >= floor]


__all__ = ["IMAGE_OFF_NOTE", "Hit", "SearchResponse", "Searcher"]
