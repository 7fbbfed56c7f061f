"""`adsearch tune`: fusion settings chosen on the user's own labelled queries.

Each query's channel rankings are fetched once, at the deepest prefetch of the grid, through the
engine's own single-channel searches; every grid cell (RRF k, channel weights, prefetch depth) then
fuses them here with Qdrant's weighted RRF formula, 1 / (rank / weight + k - 1) per channel in
float32, which tests/unit/quality/test_tune.py checks against Qdrant's own fusion. Rankings are scored with
`adsearch evaluate`'s metrics and image keys. Beside the in-sample best, a k-fold cross-validated
figure says what the choice is worth on queries it was not chosen on.

The adaptive rule (engine.search.fusion) is learnt the same way: its test of each query needs only
the lexical channel's best hit and best scores, fetched with its ranking, so cells of the rule's three
parameters over the current and the best fixed weights join the grid (the rule's cells are built on
the best fixed cell of all the queries, the one place the folds share a choice).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import ir_measures
import numpy as np

from engine.channels import channel as channel_of
from engine.errors import SearchError, UsageError
from engine.library import Library
from engine.quality.evaluate import evaluate, image_keys, metric_set, ranking_of
from engine.search import SearchRequest
from engine.search.fusion import LOOK, Rule, coverage, exact_weights, stand_out
from engine.settings import TUNED_FUSION, Settings

TUNE_CUTOFF = 10
METRICS = tuple(name for name in metric_set(TUNE_CUTOFF) if not name.startswith("map"))
RRF_KS = (1, 2, 3, 5, 8, 13, 20, 40, 60)
WEIGHT_STEPS = {
    "image": (0.0, 0.5, 1.0, 2.0, 3.0),
    "text": (0.5, 1.0, 2.0, 3.0, 4.0),
    "keywords": (0.0, 0.5, 1.0, 2.0),
}
PREFETCHES = (20, 50, 100)
RULE_COVERAGES = (0.5, 0.6, 0.75, 1.0)
RULE_STAND_OUTS = (0.0, 3.0, 5.0, 8.0)  # 0: the score signal unused
RULE_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.5)


@dataclass(frozen=True)
class Fusion:
    """One grid cell: how the channel rankings are fused (with the adaptive rule, or fixed: None)."""

    rrf_k: int
    weights: tuple[tuple[str, float], ...]  # (channel, weight) in fused_names() order
    prefetch_limit: int
    rule: Rule | None = None

    @classmethod
    def of(cls, settings: Settings, channels: list[str]) -> Fusion:
        weights = tuple((c, float(settings.weights.get(c, 1.0))) for c in channels)
        rule = Rule.of(settings) if settings.fusion == "adaptive" else None
        return cls(settings.rrf_k, weights, settings.prefetch_limit, rule)

    def settings(self) -> dict:
        """As Settings fields (what `--save` stores and search applies)."""
        fused = {"rrf_k": self.rrf_k, "weights": dict(self.weights), "prefetch_limit": self.prefetch_limit}
        if self.rule is None:
            return {**fused, "fusion": "fixed"}
        rule = self.rule
        return {**fused, "fusion": "adaptive", "exact_coverage": rule.coverage,
                "exact_stand_out": rule.stand_out, "exact_weight": rule.weight}  # fmt: skip

    def label(self) -> str:
        weights = ",".join(f"{c}={w:g}" for c, w in self.weights)
        rule = ""
        if self.rule:
            rule = f" adaptive({self.rule.coverage:g},{self.rule.stand_out:g},{self.rule.weight:g})"
        return f"k={self.rrf_k} {weights} prefetch={self.prefetch_limit}{rule}"

    def weights_for(self, rankings: QueryRankings) -> list[float]:
        """The weights this cell fuses one query with: its own, or the rule's when the wording is exact."""
        base = dict(self.weights)
        rule = self.rule
        if rule is None or rankings.lexical is None or not rule.exact(*rankings.coverage, rankings.stand_out):
            return list(base.values())
        return list(exact_weights(base, list(base), rankings.lexical, rule).values())


def fusion_grid(channels: list[str], default: Fusion) -> list[Fusion]:
    """Every cell over RRF_KS x WEIGHT_STEPS of each channel x PREFETCHES, the default first (so a
    tie keeps the default); cells whose weights are all 0 are left out."""
    cells = [default]
    steps = [WEIGHT_STEPS[c] for c in channels]
    for rrf_k, weights, prefetch in itertools.product(RRF_KS, itertools.product(*steps), PREFETCHES):
        if any(weights):
            cell = Fusion(rrf_k, tuple(zip(channels, weights, strict=True)), prefetch)
            if cell != default:
                cells.append(cell)
    return cells


def rule_cells(bases: list[Fusion]) -> list[Fusion]:
    """The adaptive rule's cells over each fixed cell of `bases`."""
    fixed = dict.fromkeys(Fusion(b.rrf_k, b.weights, b.prefetch_limit) for b in bases)
    rules = [Rule(c, w, s) for c in RULE_COVERAGES for s in RULE_STAND_OUTS for w in RULE_WEIGHTS]
    return [Fusion(b.rrf_k, b.weights, b.prefetch_limit, rule) for b in fixed for rule in rules]


@dataclass
class QueryRankings:
    """One query's candidates and their 1-based rank per channel (inf where a channel missed it), and
    what the adaptive rule reads: the lexical channel, (query words on one line of its best hit,
    query words) and how far its best score stands out (engine.search.fusion.stand_out)."""

    ids: list[str]
    ranks: np.ndarray  # (candidates, channels), float32
    lexical: str | None = None
    coverage: tuple[int, int] = (0, 0)
    stand_out: float = 0.0


def channel_rankings(library: Library, text: str, channels: list[str], depth: int) -> QueryRankings:
    """Each channel's top `depth` for a query, as the engine's single-channel search ranks them."""
    lists, lexical, covered, ratio = [], None, (0, 0), 0.0
    for channel in channels:
        try:
            request = SearchRequest(q=text, mode=channel_of(channel).mode).deeper(depth)
            hits = library.search(request, snippets=False).hits
        except SearchError:  # e.g. only stopwords for BM25: that channel ranks nothing
            hits = []
        lists.append([hit.id for hit in hits])
        if channel_of(channel).sparse and lexical is None:
            lexical, covered = channel, coverage(text, hits[0].ocr_text if hits else "")
            ratio = stand_out([hit.channels[channel].score for hit in hits[:LOOK]])
    ids = list(dict.fromkeys(i for ranking in lists for i in ranking))
    position = {pid: n for n, pid in enumerate(ids)}
    ranks = np.full((len(ids), len(channels)), np.inf, dtype=np.float32)
    for column, ranking in enumerate(lists):
        for rank, pid in enumerate(ranking, 1):
            ranks[position[pid], column] = rank
    return QueryRankings(ids, ranks, lexical, covered, ratio)


def fused_scores(rankings: QueryRankings, cell: Fusion, limit: int = TUNE_CUTOFF) -> np.ndarray:
    """Each candidate's score under `cell`: Qdrant's weighted RRF, 1 / (rank / weight + k - 1) per
    channel in float32 as Qdrant computes it, over each channel's top prefetch_limit (at least
    `limit`, as the searcher asks Qdrant for a top `limit`)."""
    k = np.float32(cell.rrf_k)
    depth = max(cell.prefetch_limit, limit)
    scores = np.zeros(len(rankings.ids), dtype=np.float32)
    for column, weight in enumerate(cell.weights_for(rankings)):
        ranks = rankings.ranks[:, column]
        inside = ranks <= depth
        if weight > 0 and inside.any():
            scores[inside] += np.float32(1.0) / (ranks[inside] / np.float32(weight) + k - np.float32(1.0))
    return scores


def fuse(rankings: QueryRankings, cell: Fusion, limit: int = TUNE_CUTOFF) -> list[str]:
    """The top `limit` ids under `cell`, equal scores ordered by id as the searcher orders them."""
    scores = fused_scores(rankings, cell, limit)
    candidates = sorted(np.flatnonzero(scores > 0), key=lambda n: (-scores[n], rankings.ids[n]))
    return [rankings.ids[n] for n in candidates[:limit]]


@dataclass
class TuneResult:
    """Mean metric per grid cell (in-sample), the default's, the best cell, and the cross-validated
    figure: each fold's held-out queries scored with the cell chosen on the other folds."""

    metric: str
    cells: list[Fusion]
    means: list[float]
    queries: int
    folds: int
    cross_validated: float
    fold_choices: Counter = field(default_factory=Counter)
    default_index: int = 0
    verified: dict[str, float] = field(default_factory=dict)  # "current", "best": by `evaluate` itself

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.means))  # first of equals: the default wins a tie

    @property
    def best(self) -> Fusion:
        return self.cells[self.best_index]

    def ranked(self) -> list[tuple[Fusion, float]]:
        order = sorted(range(len(self.cells)), key=lambda n: (-self.means[n], n))
        return [(self.cells[n], self.means[n]) for n in order]


def tune(
    library: Library,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    metric: str = "ndcg@10",
    folds: int = 5,
    seed: int = 0,
    root: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TuneResult:
    """Score every fusion cell on the judged queries and cross-validate the choice over `folds`."""
    if metric not in METRICS:
        raise UsageError(f"unknown metric '{metric}': use one of {', '.join(METRICS)}")
    judged = {qid: text for qid, text in queries.items() if qid in qrels}
    if len(judged) < folds:
        raise UsageError(f"{len(judged)} judged queries: tuning needs at least {folds} (one per fold)")
    channels = library.searcher.available("hybrid")
    if len(channels) < 2:
        raise UsageError("only one channel can search this collection: there is nothing to fuse")
    default = Fusion.of(library.searcher.settings, channels)  # tuned before: that is the current one
    cells = fusion_grid(channels, default)
    depth = max(PREFETCHES + (default.prefetch_limit,))
    keys, _ = image_keys(library, root)
    rankings = {}
    for done, (qid, text) in enumerate(judged.items(), 1):
        rankings[qid] = channel_rankings(library, text, channels, depth)
        if progress:
            progress(done, len(judged))
    judgments = {q: qrels[q] for q in judged}
    scores = cell_scores(cells, rankings, keys, judgments, metric)
    best_fixed = cells[int(np.argmax(scores.mean(axis=1)))]
    adaptive = [c for c in rule_cells([default, best_fixed]) if c != default]
    cells += adaptive
    scores = np.vstack([scores, cell_scores(adaptive, rankings, keys, judgments, metric)])
    cv, choices = cross_validate(scores, folds, seed)
    means = [round(float(m), 4) for m in scores.mean(axis=1)]
    result = TuneResult(metric, cells, means, len(judged), folds, round(cv, 4), Counter(choices))
    result.verified = {
        name: engine_figure(library, cell, judged, qrels, metric, root)
        for name, cell in (("current", default), ("best", result.best))
    }
    return result


def engine_figure(library: Library, cell: Fusion, queries, qrels, metric: str, root=None) -> float:
    """`adsearch evaluate`'s hybrid figure with `cell` as the search settings: Qdrant's own fusion.
    (The grid's local fusion differs from it only where a channel has equal scores, which Qdrant
    may order differently inside a fused query than alone.)"""
    settings = library.searcher.settings.with_overrides(**cell.settings())
    trial = Library(settings, store=library.store, encoders=library.encoders)  # shares; not closed
    return evaluate(trial, queries, qrels, ["hybrid"], k=TUNE_CUTOFF, root=root).metrics["hybrid"][metric]


def cell_scores(
    cells: list[Fusion],
    rankings: dict[str, QueryRankings],
    keys: dict[str, list[str]],
    qrels: dict[str, dict[str, int]],
    metric: str,
) -> np.ndarray:
    """(cells, queries) metric values, queries in `rankings` order."""
    measure = metric_set(TUNE_CUTOFF)[metric]
    evaluator = ir_measures.evaluator([measure], qrels)
    order = {qid: n for n, qid in enumerate(rankings)}
    scores = np.zeros((len(cells), len(rankings)), dtype=np.float64)
    for row, cell in enumerate(cells):
        run = {qid: ranking_of(fuse(r, cell), keys) for qid, r in rankings.items()}
        for value in evaluator.iter_calc({q: r for q, r in run.items() if r}):
            scores[row, order[value.query_id]] = value.value
    return scores


def cross_validate(scores: np.ndarray, folds: int, seed: int = 0) -> tuple[float, list[int]]:
    """k-fold over queries (columns): the mean held-out value, and the cell each fold chose."""
    columns = list(range(scores.shape[1]))
    random.Random(seed).shuffle(columns)
    held_out, choices = [], []
    for fold in range(folds):
        test = columns[fold::folds]
        train = np.setdiff1d(columns, test)
        choice = int(np.argmax(scores[:, train].mean(axis=1)))
        choices.append(choice)
        held_out.extend(scores[choice, test])
    return float(np.mean(held_out)), choices


def save(library: Library, result: TuneResult, source: str) -> dict:
    """Store the best cell in the collection metadata, where search takes it as its default."""
    record = {
        **result.best.settings(),
        "metric": result.metric,
        "in_sample": result.verified.get("best", result.means[result.best_index]),
        "cross_validated": result.cross_validated,
        "before": result.verified.get("current", result.means[result.default_index]),
        "queries": result.queries,
        "folds": result.folds,
        "source": source,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    library.store.update_metadata({TUNED_FUSION: record})
    library.invalidate_caches()
    return record


def forget(library: Library) -> None:
    """Drop the saved fusion settings: search goes back to the built-in (or environment's) ones."""
    library.store.update_metadata({TUNED_FUSION: None})
    library.invalidate_caches()


def report_lines(result: TuneResult, top: int = 10) -> list[str]:
    """What `adsearch tune` prints: the default, the best, the cross-validated figure, the top cells."""
    m = result.metric
    checked = result.verified
    lines = [
        f"{len(result.cells)} fusion settings scored on {result.queries} queries ({m}; in brackets as "
        "`adsearch evaluate` measures it, through Qdrant's own fusion):",
        f"  current   {result.means[result.default_index]:.4f} [{checked.get('current', float('nan')):.4f}]  "
        f"{result.cells[result.default_index].label()}",
        f"  best      {result.means[result.best_index]:.4f} [{checked.get('best', float('nan')):.4f}]  "
        f"{result.best.label()}  (in-sample)",
        f"  {result.folds}-fold cross-validated: {result.cross_validated:.4f} (each fold's queries scored "
        "with the setting chosen on the other folds: what to expect on new queries)",
        "",
        f"top {top}:",
    ]
    lines += [f"  {mean:.4f}  {cell.label()}" for cell, mean in result.ranked()[:top]]
    return lines


def grid_tsv(result: TuneResult) -> str:
    """Every cell and its mean metric, one line each, best first."""
    weights = [f"w_{c}" for c, _ in result.cells[0].weights]
    rule_columns = ["fusion", "exact_coverage", "exact_stand_out", "exact_weight"]
    header = "\t".join(["rrf_k", *weights, "prefetch", *rule_columns, result.metric])
    rows = []
    for cell, mean in result.ranked():
        rule = ["fixed", "", "", ""]
        if cell.rule:
            r = cell.rule
            rule = ["adaptive", *(f"{v:g}" for v in (r.coverage, r.stand_out, r.weight))]
        ws = [f"{w:g}" for _, w in cell.weights]
        rows.append("\t".join([str(cell.rrf_k), *ws, str(cell.prefetch_limit), *rule, f"{mean:.4f}"]))
    return "\n".join([header, *rows]) + "\n"


__all__ = ["METRICS", "Fusion", "TuneResult", "forget", "fuse", "fusion_grid", "save", "tune"]
