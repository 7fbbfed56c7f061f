"""How a hybrid query's channels are weighed in Qdrant's RRF: fixed weights, or weights that read the
query ("adaptive"). The fusion itself stays Qdrant's weighted RRF; only the weights change per query.

The adaptive rule looks first at the lexical (sparse) channel alone: its best hit, the one line of
that hit's text that holds most of the query's words, and how far the hit's score stands above the
channel's LOOK-th best. When most of the words are there together (the query is wording printed on an
ad: a headline, a brand, a line copied from it) or the score stands far out (a distinctive match, e.g.
a brand OCR half-misread that the character 4-grams still found), the lexical channel leads and every
other channel (dense text, image) is kept at a low weight, so a near paraphrase elsewhere cannot
outrank the ad that says it; otherwise the fixed weights apply. The rule names no
channel but the lexical one: a dense channel, image or text or one a plug-in adds, is treated alike.
Measured on the ads377 dev sets and two read-off-the-ads sets (bench/results/quality.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.search.snippets import best_snippet, query_terms
from engine.settings.search import FUSIONS

__all__ = ["FUSIONS", "LOOK", "FusionPlan", "Rule", "adaptive_plan", "coverage", "exact_weights",
           "fixed_plan", "stand_out"]  # fmt: skip
LOOK = 10  # how many of the lexical channel's best scores the first look reads


@dataclass(frozen=True)
class Rule:
    """The adaptive rule's parameters (settings exact_coverage, exact_stand_out and exact_weight;
    `adsearch tune` learns them): the share of the query's words that must stand together on one line
    of the lexical channel's best hit, or how far that hit's score must stand above the channel's
    LOOK-th best (0: not used), for the lexical channel to lead; every other channel's weight then."""

    coverage: float
    weight: float
    stand_out: float = 0.0

    @classmethod
    def of(cls, settings) -> Rule:
        return cls(settings.exact_coverage, settings.exact_weight, settings.exact_stand_out)

    def covered(self, found: int, words: int) -> bool:
        return bool(words) and found / words >= self.coverage

    def stands_out(self, ratio: float) -> bool:
        return bool(self.stand_out) and ratio >= self.stand_out

    def exact(self, found: int, words: int, ratio: float = 0.0) -> bool:
        """Whether the lexical channel leads: the words are there together, or its best hit stands out."""
        return self.covered(found, words) or self.stands_out(ratio)


@dataclass(frozen=True)
class FusionPlan:
    """The weights one query is fused with, and why (shown in every explanation)."""

    rule: str  # fixed | given | exact wording | distinctive match | no exact wording
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


def stand_out(scores: list[float]) -> float:
    """How far the lexical channel's best score stands above the rest: its ratio to the LOOK-th best
    (the last, with fewer hits); inf for a lone hit, 0 for none."""
    scores = scores[:LOOK]
    if not scores:
        return 0.0
    if len(scores) == 1 or scores[-1] <= 0:
        return float("inf")
    return scores[0] / scores[-1]


def exact_weights(base: dict[str, float], channels: list[str], lexical: str, rule: Rule) -> dict[str, float]:
    """The weights when the wording is exact: the lexical channel keeps its own, the others get the
    rule's (the same for every other channel: none is special)."""
    return {c: (base.get(c, 1.0) if c == lexical else rule.weight) for c in channels}


def adaptive_plan(base: dict[str, float], channels: list[str], lexical: str, query: str,
                  best_text: str | None, rule: Rule, ratio: float = 0.0) -> FusionPlan:  # fmt: skip
    """The weights for `channels` given the text of the lexical channel's best hit (None: it found
    nothing) and how far its score stands out (`stand_out`): exact wording or a distinctive match lets
    the lexical channel lead, anything else keeps `base`."""
    found, words = coverage(query, best_text or "")
    others = [c for c in channels if c != lexical]
    lowered = f" ({', '.join(others)} x{rule.weight:g})" if others else ""
    if rule.covered(found, words):
        return FusionPlan(
            "exact wording", exact_weights(base, channels, lexical, rule),
            f"exact wording: {found} of {words} query words on one line of an ad: {lexical} leads{lowered}",
        )  # fmt: skip
    if rule.stands_out(ratio):
        shown = "its only match" if ratio == float("inf") else f"{ratio:.1f}x the {LOOK}th"
        return FusionPlan(
            "distinctive match", exact_weights(base, channels, lexical, rule),
            f"distinctive match: the best {lexical} score is {shown}: {lexical} leads{lowered}",
        )  # fmt: skip
    shown = f"{found} of {words} query words" if words else "no query words"
    return FusionPlan(
        "no exact wording", {c: base.get(c, 1.0) for c in channels},
        f"{shown} together in the best {lexical} match, none standing out: fixed weights",
    )  # fmt: skip
