"""What a search answers: hits with the fused score, each channel's rank and score, and the OCR line
that matched; the response with notes, timings and the filtered total."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from engine.search.snippets import best_snippet


@dataclass
class ChannelMatch:
    rank: int
    score: float


@dataclass
class Hit:
    """One result: the fused score, each channel's rank/score, and the OCR line that matched."""

    id: str
    rank: int
    score: float
    paths: list[str]
    channels: dict[str, ChannelMatch]
    snippet: str
    matched_terms: list[str]
    ocr_text: str
    width: int | None = None
    height: int | None = None


@dataclass
class SearchResponse:
    query: str | None
    mode: str
    channels: list[str]
    hits: list[Hit]
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    total: int | None = None  # images matching the filters (all of them ranked), when filtered or browsing
    total_exact: bool = True  # False: `total` is Qdrant's estimate (broad filters on big collections)
    fusion: dict | None = None  # the weights this query was fused with and why (engine.search.fusion)

    def to_dict(self) -> dict:
        return asdict(self)


def explained_hits(result, terms: list[str] | None, offset: int, diversified: bool) -> list[Hit]:
    """The store's fused ranking as hits, each with its rank in every channel that found it and
    (when `terms` is not None) the OCR line that matched. Equal fused scores (common with RRF) come
    in a stable order, by id, unless MMR ordered them."""
    ranks = {
        channel: {hit.id: ChannelMatch(rank, round(hit.score, 6)) for rank, hit in enumerate(hits, 1)}
        for channel, hits in result.per_channel.items()
    }
    fused = result.fused if diversified else sorted(result.fused, key=lambda h: (-h.score, h.id))
    hits = []
    for position, hit in enumerate(fused, offset + 1):
        payload = hit.payload or {}
        text = payload.get("ocr_text", "")
        snippet, matched = best_snippet(text, terms) if terms is not None else ("", [])
        channels = {c: r[hit.id] for c, r in ranks.items() if hit.id in r}
        hits.append(Hit(hit.id, position, round(hit.score, 6), payload.get("paths", []), channels, snippet,
                        matched, text, payload.get("width"), payload.get("height")))  # fmt: skip
    return hits
