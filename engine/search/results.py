"""What a search answers: hits with the fused score, each channel's rank and score, and the OCR line
that matched; the response with notes, timings and the filtered total."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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

    def to_dict(self) -> dict:
        return asdict(self)
