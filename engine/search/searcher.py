"""Search: embed the query once per channel, one Qdrant batch call (prefetch per channel + RRF
fusion for the ranking, each channel alone for the explanation), hits with per-channel ranks."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING

from PIL import Image

from engine.config import Settings
from engine.errors import NotFound, SearchError
from engine.filters import Clause
from engine.ingest.ocr import usable_ocr
from engine.models.creative import THRESHOLD, creative_vector
from engine.schema import CHANNELS, CREATIVE_CHANNEL, DUPLICATE_MODE, MODES
from engine.search.results import ChannelMatch, Hit, SearchResponse
from engine.search.snippets import SNIPPET_CHARS, best_snippet, query_terms
from engine.store import ChannelQuery, Store
from ocr_text import read_text

if TYPE_CHECKING:
    from engine.models.encoders import Encoders

MAX_EXAMPLES = 40
IMAGE_OFF_NOTE = "image channel off (no CLIP weights): text channels only"
EXACT_TOTAL_UP_TO = 10_000  # a filtered total above this (by estimate) is given as the estimate


def parse_weights(text: str | None) -> dict[str, float]:
    """'image=1,text=2,keywords=0.5' -> {channel: weight}; unknown or repeated channels, numbers that are
    not finite or outside 0..MAX_WEIGHT, and every channel at 0, raise SearchError."""
    from engine.config import MAX_WEIGHT  # (could join the CHANNELS import at the top)

    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in CHANNELS:
            raise SearchError(
                f"bad weight '{part}': use channel=number with channel in {', '.join(CHANNELS)}"
            )
        if name in weights:
            raise SearchError(f"bad weight '{part}': channel {name} is given twice")
        try:
            weight = float(value)
        except ValueError:
            raise SearchError(f"bad weight '{part}': '{value.strip()}' is not a number") from None
        if not (math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT):
            raise SearchError(f"bad weight '{part}': weights are finite numbers from 0 to {MAX_WEIGHT:g}")
        weights[name] = weight
    if len(weights) == len(CHANNELS) and not any(weights.values()):
        raise SearchError("bad weights: every channel is 0; give at least one a weight > 0")
    return weights


class Searcher:
    """Answers queries against one store with one set of encoders."""

    def __init__(self, settings: Settings, encoders: Encoders, store: Store):
        self.settings = settings
        self.encoders = encoders
        self.store = store
        meta = store.metadata()
        self.visual = encoders.visual and bool(meta["visual"] if "visual" in meta else store.count("image"))
        # Text queries repeat (paging, popular queries, evaluation sweeps): embed each once.
        self._embed_text = lru_cache(maxsize=4096)(self._embed_text_uncached)
        self._encoder_pool = ThreadPoolExecutor(max_workers=len(CHANNELS), thread_name_prefix="encode")

    def available(self, mode: str) -> list[str]:
        """Channels a mode can use right now (the image channel needs CLIP at ingest and query time)."""
        if mode not in MODES:
            raise SearchError(f"unknown mode '{mode}': use one of {', '.join(MODES)}")
        return [c for c in MODES[mode] if c != "image" or self.visual]

    def channels_for(self, mode: str, notes: list[str] | None = None) -> list[str]:
        """Channels a mode will use, or SearchError when it can use none; notes say what is off."""
        notes = notes if notes is not None else []
        channels = self.available(mode)
        if not channels:
            raise SearchError(
                "visual search needs CLIP: the weights could not be loaded"
                + (f" ({self.encoders.clip_error})" if self.encoders.clip_error else "")
                + " or the collection was built without them"
            )
        if "image" in MODES[mode] and "image" not in channels:
            notes.append(IMAGE_OFF_NOTE)
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
    ) -> SearchResponse:
        """Run one query (text, image, or both) among the images matching `where`, and return ranked
        hits with explanations; without `snippets` the hits carry no matched OCR line (ranking-only
        callers such as evaluation). `diverse` re-ranks the fused candidates by maximal marginal
        relevance; `positive`/`negative` image ids turn each channel into a recommend query (more
        like these, unlike those), the examples themselves left out of the hits."""
        query = (query or "").strip()
        if not query and image is None:
            raise SearchError("empty query: give a text query or an image")
        if mode == DUPLICATE_MODE and image is None:
            raise SearchError("duplicate mode finds copies of an image: give a query image, not text")
        notes: list[str] = []
        channels = self.channels_for(mode, notes)
        timings: dict[str, float] = {}
        text = query
        if image is not None and not query and mode != DUPLICATE_MODE:
            start = time.perf_counter()
            text = read_text(image.convert("RGB"), usable_ocr(self.settings.ocr_settings())).text
            timings["ocr"] = _ms(start)
            if not text:
                channels = [c for c in channels if c == "image"]
                notes.append("no text found in the query image: image channel only")
            if not channels:
                raise SearchError("the query image has no readable text and visual search is unavailable")
        queries = self._with_examples(self._embed(channels, text, image, timings), positive, negative)
        terms = query_terms(text) if snippets else None
        diversity = self.settings.mmr_diversity if diverse else None
        examples = set(positive) | set(negative)
        response = self._execute(
            queries, terms, k + len(examples), offset, weights, timings, where, diversity
        )
        if examples:
            response.hits = [h for h in response.hits if h.id not in examples][:k]
            for rank, hit in enumerate(response.hits, offset + 1):
                hit.rank = rank
        if mode == DUPLICATE_MODE:
            response.hits = _same_creative(response.hits)
        total, exact = self._total(where) if where else (None, True)
        return SearchResponse(
            query or None, mode, response.channels, response.hits, notes, timings, total, exact
        )

    def _total(self, where: Sequence[Clause]) -> tuple[int, bool]:
        """How many images match: Qdrant's estimate from its payload indexes (microseconds), made
        exact when it is small enough to count cheaply (an exact count of a broad filter costs as much
        as the search itself: bench/results/filters.md)."""
        estimate = self.store.count(where=where, exact=False)
        if estimate <= EXACT_TOTAL_UP_TO:
            return self.store.count(where=where), True
        return estimate, False

    def browse(
        self, where: Sequence[Clause] = (), sort: str = "ingested_at", descending: bool = True,
        k: int = 10, offset: int = 0,
    ) -> SearchResponse:  # fmt: skip
        """No query: the images matching `where`, ordered by an indexed field (newest first by default)."""
        start = time.perf_counter()
        records = self.store.browse(where, sort, descending, k, offset)
        hits = [
            Hit(
                id=pid,
                rank=rank,
                score=0.0,
                paths=p.get("paths", []),
                channels={},
                snippet=(p.get("ocr_text") or "").split("\n", 1)[0][:SNIPPET_CHARS],
                matched_terms=[],
                ocr_text=p.get("ocr_text", ""),
                width=p.get("width"),
                height=p.get("height"),
            )
            for rank, (pid, p) in enumerate(records, offset + 1)
        ]
        notes = [f"no query: browsing by {sort}, {'descending' if descending else 'ascending'}"]
        total, exact = self._total(where)
        return SearchResponse(None, "browse", [], hits, notes, {"qdrant": _ms(start)}, total, exact)

    def _with_examples(
        self, queries: list[ChannelQuery], positive: Sequence[str], negative: Sequence[str]
    ) -> list[ChannelQuery]:
        """Each channel's query with the stored vectors of the example images in that channel."""
        if not positive and not negative:
            return queries
        if len(positive) + len(negative) > MAX_EXAMPLES:
            raise SearchError(f"at most {MAX_EXAMPLES} example images (positive and negative together)")
        vectors = {}
        for image_id in dict.fromkeys([*positive, *negative]):
            stored = self.store.vectors(image_id)
            if stored is None:
                raise SearchError(f"no image with id {image_id} (given as a feedback example)")
            vectors[image_id] = stored
        return [
            replace(
                q,
                positives=tuple(vectors[i][q.channel] for i in positive if q.channel in vectors[i]),
                negatives=tuple(vectors[i][q.channel] for i in negative if q.channel in vectors[i]),
            )
            for q in queries
        ]

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
        if not queries and mode == DUPLICATE_MODE:
            raise SearchError(
                f"image {point_id} has no creative fingerprint yet: run `adsearch ingest` again"
            )
        if not queries:
            raise SearchError(f"image {point_id} has no vectors for mode '{mode}' (no OCR text?)")
        payload = self.store.retrieve([point_id]).get(point_id, {})
        response = self._execute(queries, query_terms(payload.get("ocr_text", "")), k + 1, 0, None, {}, where)
        hits = [h for h in response.hits if h.id != point_id][:k]
        if mode == DUPLICATE_MODE:
            hits = _same_creative(hits)
        for rank, hit in enumerate(hits, 1):
            hit.rank = rank
        return SearchResponse(None, mode, response.channels, hits, notes, response.timings_ms)

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
        weights = {**self.settings.weights, **(weights or {})}
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
        timings["qdrant"] = _ms(start)
        ranks = {
            channel: {hit.id: ChannelMatch(rank, round(hit.score, 6)) for rank, hit in enumerate(hits, 1)}
            for channel, hits in result.per_channel.items()
        }
        hits = []
        fused = result.fused
        if diversity is None:  # equal fused scores (common with RRF) in a stable order: by id
            fused = sorted(fused, key=lambda h: (-h.score, h.id))
        for position, hit in enumerate(fused, offset + 1):
            payload = hit.payload or {}
            text = payload.get("ocr_text", "")
            snippet, matched = best_snippet(text, terms) if terms is not None else ("", [])
            hits.append(
                Hit(
                    id=hit.id,
                    rank=position,
                    score=round(hit.score, 6),
                    paths=payload.get("paths", []),
                    channels={c: r[hit.id] for c, r in ranks.items() if hit.id in r},
                    snippet=snippet,
                    matched_terms=matched,
                    ocr_text=payload.get("ocr_text", ""),
                    width=payload.get("width"),
                    height=payload.get("height"),
                )
            )
        return SearchResponse(None, "", [q.channel for q in queries], hits, [], timings)

    def _embed(
        self, channels: list[str], text: str, image: Image.Image | None, timings: dict[str, float]
    ) -> list[ChannelQuery]:
        """One vector per channel. The model channels run concurrently (ONNX Runtime and torch release
        the GIL), so a hybrid query costs about its slowest encoder, not the sum."""

        def embed(channel: str) -> ChannelQuery | None:
            start = time.perf_counter()
            if channel == CREATIVE_CHANNEL:
                query = ChannelQuery(CREATIVE_CHANNEL, creative_vector(image)) if image is not None else None
            elif channel == "image" and image is not None:
                query = ChannelQuery(
                    "image", self.encoders.clip.encode_images([image.convert("RGB")])[0].tolist()
                )
            else:
                query = self._embed_text(channel, text)
            timings[f"encode_{channel}"] = _ms(start)
            return query

        start = time.perf_counter()
        if len(channels) > 1:
            queries = list(self._encoder_pool.map(embed, channels))
        else:
            queries = [embed(c) for c in channels]
        timings["encode"] = _ms(start)
        queries = [q for q in queries if q is not None]
        if not queries:
            raise SearchError("the query has no searchable words for this mode")
        return queries

    def _embed_text_uncached(self, channel: str, text: str) -> ChannelQuery | None:
        """One channel's vector for a text query; None when BM25 has nothing to match (only stopwords)."""
        if channel == "image":
            return ChannelQuery("image", self.encoders.clip.encode_texts([text])[0].tolist())
        if channel == "text":
            return ChannelQuery("text", self.encoders.dense.encode([text])[0].tolist())
        sparse = self.encoders.sparse.encode_query(text)
        return ChannelQuery("keywords", sparse) if sparse.indices else None


def _same_creative(hits: list[Hit]) -> list[Hit]:
    """Duplicate mode: only the hits similar enough to be the same creative ("no copies" is no hits)."""
    return [h for h in hits if h.score >= THRESHOLD]


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


__all__ = ["MODES", "Hit", "SearchResponse", "Searcher", "parse_weights"]
