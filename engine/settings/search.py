"""How search fuses the channels: RRF k, each channel's weight, prefetch depth, diversity."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, field_validator

from engine.settings.base import ENV_ONLY, Section

# Qdrant's weighted RRF adds 1/(k + rank/w - 1) per channel (rank from 1) in float32: a weight past
# about 1000 changes nothing when k > 1 and near float32's limit ties every score; with k = 1 the top
# score is about w, so 1e39 gives inf (null in JSON). Weights are therefore 0..MAX_WEIGHT.
MAX_WEIGHT = 1000.0
# `adsearch tune --save` stores its choice of these under this collection-metadata key; search takes
# them as defaults wherever neither the environment nor a flag set them.
TUNED_FUSION = "tuned_fusion"
TUNABLE = ("rrf_k", "weights", "prefetch_limit",
           "fusion", "exact_coverage", "exact_stand_out", "exact_weight")  # fmt: skip
FUSIONS = ("fixed", "adaptive")  # how a hybrid query's channels are weighed (engine.search.fusion)


class SearchSection(Section):
    """The search settings. None has a flag: `search --weights` weighs one query, not this setting."""

    # Fusion defaults tuned on the ads377 dev sets (bench/results/quality.md): a small RRF k trusts
    # each channel's top ranks; the dense text channel counts 3x. Each channel is ranked 50 deep
    # before fusion: at RRF k 3 the fused top 10 comes from the first few dozen ranks (the same
    # quality as 100 on the ads377 sets, bench/results/prefetch.md; less store time at 1M, scale.md).
    rrf_k: Annotated[int, ENV_ONLY] = Field(3, ge=1, le=10_000)
    prefetch_limit: Annotated[int, ENV_ONLY] = Field(50, ge=1, le=10_000)
    weights: Annotated[dict[str, float], ENV_ONLY] = Field(
        default_factory=lambda: {"image": 1.0, "text": 3.0, "keywords": 1.0}
    )
    # adaptive: as good as fixed on the ads377 dev sets, better on exact wording and brands
    # (bench/results/fusion.md, 5-fold cross-validated)
    fusion: Annotated[Literal[FUSIONS], ENV_ONLY] = Field(
        "adaptive", description="fixed weights, or per-query weights from its wording (engine.search.fusion)"
    )
    # the adaptive rule's parameters (engine.search.fusion; `adsearch tune` learns them): the share of
    # the query's words on one line of the lexical channel's best hit that makes the wording exact, how
    # far that hit's score must stand above the channel's 10th best to count as a distinctive match,
    # and every other channel's weight then (5-fold cross-validated: bench/results/fusion.md)
    exact_coverage: Annotated[float, ENV_ONLY] = Field(
        0.6, gt=0.0, le=1.0, allow_inf_nan=False,
        description="adaptive fusion: share of the query's words on one line of the best keyword hit "
        "that makes the wording exact",
    )  # fmt: skip
    exact_stand_out: Annotated[float, ENV_ONLY] = Field(
        5.0, ge=0.0, le=MAX_WEIGHT, allow_inf_nan=False,
        description="adaptive fusion: the best keyword score over the 10th best that makes a match "
        "distinctive (0: not used)",
    )  # fmt: skip
    exact_weight: Annotated[float, ENV_ONLY] = Field(
        0.05, ge=0.0, le=MAX_WEIGHT, allow_inf_nan=False,
        description="adaptive fusion: every other channel's weight when the wording is exact",
    )  # fmt: skip
    # 0.3: with near-copies present, 9.7 distinct ads per top 10 (10 at 0.5) at less ranking cost
    # (known-item nDCG@10 0.435 vs 0.410; topic 0.467 vs 0.405): bench/results/diversity.md
    mmr_diversity: Annotated[float, ENV_ONLY] = Field(
        0.3, ge=0.0, le=1.0, allow_inf_nan=False,
        description="--diverse: how much maximal marginal relevance trades relevance for variety (0-1)",
    )  # fmt: skip

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        # The channel names are checked where the weights are used (engine.search.searcher.
        # fusion_weights): channels are a registry, and a plug-in may register after settings load.
        for name, weight in value.items():
            if not (math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT):
                raise ValueError(
                    f"weight of {name} is {weight}: weights are numbers from 0 to {MAX_WEIGHT:g}"
                )
        return value
