"""How a hybrid query's channels are weighed in Qdrant's RRF: fixed weights, or weights that read the
query ("adaptive"). The fusion itself stays Qdrant's weighted RRF; only the weights change per query.

The adaptive rule looks first at the lexical (sparse) channel alone: its best hit, and the one line of
that hit's text that holds most of the query's words. When most of them are there together (the
query is wording printed on an ad: a headline, a brand, a line copied from it), the lexical channel
leads and every other channel (dense text, image) is kept at a low weight, so a near paraphrase
elsewhere cannot outrank the ad that says it; otherwise the fixed weights apply. The rule names no
channel but the lexical one: a dense channel, image or text or one a plug-in adds, is treated alike.
Measured on the ads377 dev sets and two read-off-the-ads sets (bench/results/quality.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.search.snippets import best_snippet, query_terms
from engine.settings.search import FUSIONS

__all__ = [
    "EXACT_COVERAGE",
    "FUSIONS",
    "OTHER_WEIGHT",
    "FusionPlan",
    "adaptive_plan",
    "coverage",
    "fixed_plan",
]
EXACT_COVERAGE = 0.6  # share of the query's words on one line of the lexical channel's best hit
OTHER_WEIGHT = 0.1  # every non-lexical channel's weight when the wording is exact


@dataclass(frozen=True)
class FusionPlan:
    """The weights one query is fused with, and why (shown in every explanation)."""

    rule: str  # fixed | given | exact wording | no exact wording
    weights: dict[str, float]
    reason: str

    def public(self) -> dict:
        return asdict(self)


def fixed_plan(weights: dict[str, float], rule: str, reason: str) -> FusionPlan:
    return FusionPlan(rule, dict(weights), reason)


def coverage(query: str, text: str) -> tuple[int, int]:
    """(query words found together on the best line of `text`, query words), stopwords left out."""
    terms = query_terms(query)
    return len(best_snippet(text, terms)[1]) if terms else 0, len(terms)


def adaptive_plan(base: dict[str, float], channels: list[str], lexical: str, query: str,
                  best_text: str | None) -> FusionPlan:  # fmt: skip
    """The weights for `channels` given the text of the lexical channel's best hit (None: it found
    nothing): exact wording lets the lexical channel lead, anything else keeps `base`."""
    weights = {c: base.get(c, 1.0) for c in channels}
    found, words = coverage(query, best_text or "")
    if not words or found / words < EXACT_COVERAGE:
        shown = f"{found} of {words} query words" if words else "no query words"
        return FusionPlan(
            "no exact wording", weights, f"{shown} together in the best {lexical} match: fixed weights"
        )
    others = [c for c in channels if c != lexical]
    exact = {c: (base.get(c, 1.0) if c == lexical else OTHER_WEIGHT) for c in channels}
    return FusionPlan(
        "exact wording", exact,
        f"exact wording: {found} of {words} query words on one line of an ad: {lexical} leads"
        + (f" ({', '.join(others)} x{OTHER_WEIGHT:g})" if others else ""),
    )  # fmt: skip
