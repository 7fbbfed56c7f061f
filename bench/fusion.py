"""Fusion that reads the query (issue #25): fixed vs adaptive weights, and each channel alone, on four
query sets over the 377 real ads, with the adaptive rule's two parameters cross-validated.

Sets: the two ads377 dev sets (known-item: annotators' statements; topic: Pitt topic names) and two
read off the ads by eye (../shared/data/ads377_extra, its README says how): exact wording (a line
printed on an ad) and brand (an advertiser's name). The collection is bench/quality.py's (text
channels; CLIP weights cannot be downloaded here).

Cross-validation: queries are split into 5 folds per set (seeded); for each fold the rule's cell
(coverage threshold x weight of the other channels) that gains most over fixed weights on the other
4 folds, summed over the sets, is applied to the held-out fold; the held-out figures are pooled.

    .venv/bin/python -m bench.fusion
"""

from __future__ import annotations

import random
from contextlib import contextmanager

from bench.common import ADS377, WORK, write_results
from engine.errors import SearchError
from engine.library import Library
from engine.quality.evaluate import image_keys, read_qrels, read_queries
from engine.search import SearchRequest
from engine.search import fusion as rule
from engine.settings import Settings

EXTRA = ADS377.parent / "ads377_extra"
SETS = {"known_item": (ADS377 / "queries", "mrr@10"), "topic": (ADS377 / "queries", "ndcg@10"),
        "exact_wording": (EXTRA, "mrr@10"), "brand": (EXTRA, "ndcg@10")}  # fmt: skip
GRID = [(t, w) for t in (0.5, 0.6, 0.75, 0.9) for w in (0.05, 0.1, 0.2, 0.5)]
FOLDS = 5


def mrr(ranked: list[str], rel: dict[str, int]) -> float:
    return next((1 / i for i, key in enumerate(ranked[:10], 1) if rel.get(key, 0) > 0), 0.0)


def ndcg(ranked: list[str], rel: dict[str, int]) -> float:
    import math

    dcg = sum((2 ** rel.get(k, 0) - 1) / math.log2(i + 1) for i, k in enumerate(ranked[:10], 1))
    ideal = sorted(rel.values(), reverse=True)[:10]
    best = sum((2**g - 1) / math.log2(i + 1) for i, g in enumerate(ideal, 1))
    return dcg / best if best else 0.0


METRICS = {"mrr@10": mrr, "ndcg@10": ndcg}


@contextmanager
def rule_cell(coverage: float, other: float):
    """The adaptive rule with other parameters for a while (the bench's grid)."""
    saved = rule.EXACT_COVERAGE, rule.OTHER_WEIGHT
    rule.EXACT_COVERAGE, rule.OTHER_WEIGHT = coverage, other
    try:
        yield
    finally:
        rule.EXACT_COVERAGE, rule.OTHER_WEIGHT = saved


def per_query(library, keys, sets, **options) -> dict[str, dict[str, float]]:
    """Each set's per-query metric for one way of searching."""
    out = {}
    for name, (queries, qrels, metric) in sets.items():
        out[name] = {}
        for qid, text in queries.items():
            try:
                hits = library.search(SearchRequest(q=text, k=10, **options), snippets=False).hits
            except SearchError:  # nothing this mode can search for (a channel alone): no hits, as evaluate
                hits = []
            out[name][qid] = METRICS[metric]([keys[h.id][0] for h in hits if keys.get(h.id)], qrels[qid])
    return out


def mean(values: dict[str, float]) -> float:
    return round(sum(values.values()) / len(values), 4)


def cross_validated(cells: dict, fixed: dict) -> tuple[dict[str, float], list]:
    """Pooled held-out figures of the cell chosen on the other folds, and the cells chosen."""
    rng = random.Random(7)
    folds = {name: {q: rng.randrange(FOLDS) for q in fixed[name]} for name in fixed}
    held: dict[str, list[float]] = {name: [] for name in fixed}
    chosen = []
    for k in range(FOLDS):

        def gain(cell, k=k):
            return sum(
                sum(cells[cell][n][q] - fixed[n][q] for q in fixed[n] if folds[n][q] != k) / len(fixed[n])
                for n in fixed
            )

        best = max(cells, key=gain)
        chosen.append(best)
        for n in fixed:
            held[n] += [cells[best][n][q] for q in fixed[n] if folds[n][q] == k]
    return {n: round(sum(v) / len(v), 4) for n, v in held.items()}, chosen


def report(data: dict) -> str:
    rows = []
    for name, (_, _, metric) in data["sets"].items():
        r = {k: data[k][name] for k in ("text", "keyword", "fixed", "adaptive", "adaptive_cv")}
        best_single = max(r["text"], r["keyword"])
        ok = "yes" if r["adaptive_cv"] >= max(r["fixed"], best_single) - data["one_query"][name] else "no"
        rows.append(f"| {name} ({data['sizes'][name]}) | {metric} | {r['text']} | {r['keyword']} | {r['fixed']} | "
                    f"{r['adaptive']} | **{r['adaptive_cv']}** | {ok} |")  # fmt: skip
    return f"""# Fusion that reads the query: fixed vs adaptive weights (issue #25)

`.venv/bin/python -m bench.fusion` (bench/fusion.py says how). 377 real ads, text channels (dense
MiniLM + BM25 on the OCR text; no CLIP weights here). Adaptive rule (engine/search/fusion.py):
when at least {rule.EXACT_COVERAGE:g} of the query's words stand together on one line of the keywords
channel's best hit, the keywords channel leads and every other channel gets weight {rule.OTHER_WEIGHT:g};
otherwise the fixed weights (text 3, keywords 1, RRF k 3).

| set (queries) | metric | text | keyword | hybrid fixed | hybrid adaptive | adaptive, 5-fold CV | CV >= best single and fixed (within one query) |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Cells chosen by the folds (coverage threshold, other channels' weight): {data["chosen"]}. Queries whose
wording was exact: {data["exact_share"]}.

Sets: known-item and topic are ads377's dev sets; exact wording (one line printed on an ad, every ad
showing it relevant) and brand (the advertiser's name, every ad of it relevant) were read off the 377
images by eye (../shared/data/ads377_extra/README.md), not from any OCR.
"""


def main() -> None:
    settings = Settings(db=WORK / "quality-db", clip_model=str(WORK / "no-clip-weights"))
    sets = {}
    for name, (folder, metric) in SETS.items():
        queries, qrels = read_queries(folder / f"{name}.tsv"), read_qrels(folder / f"{name}.qrels")
        sets[name] = ({q: t for q, t in queries.items() if q in qrels}, qrels, metric)
    with Library(settings) as library:
        keys, _ = image_keys(library, ADS377 / "images")
        text = per_query(library, keys, sets, mode="text")
        keyword = per_query(library, keys, sets, mode="keyword")
        fixed = per_query(library, keys, sets, fusion="fixed")
        adaptive = per_query(library, keys, sets, fusion="adaptive")
        cells = {}
        for cell in GRID:
            with rule_cell(*cell):
                cells[cell] = per_query(library, keys, sets, fusion="adaptive")
        plans = [library.search(SearchRequest(q=t, k=1, fusion="adaptive")).fusion["rule"]
                 for queries, _, _ in sets.values() for t in queries.values()]  # fmt: skip
    cv, chosen = cross_validated(cells, fixed)
    data = {
        "sets": {n: (str(SETS[n][0]), None, m) for n, (_, _, m) in sets.items()},
        "sizes": {n: len(q) for n, (q, _, _) in sets.items()},
        "one_query": {n: round(1 / len(q), 4) for n, (q, _, _) in sets.items()},
        "text": {n: mean(v) for n, v in text.items()}, "keyword": {n: mean(v) for n, v in keyword.items()},
        "fixed": {n: mean(v) for n, v in fixed.items()}, "adaptive": {n: mean(v) for n, v in adaptive.items()},
        "adaptive_cv": cv, "chosen": chosen,
        "exact_share": f"{plans.count('exact wording')} of {len(plans)}",
        "rule": {"exact_coverage": rule.EXACT_COVERAGE, "other_weight": rule.OTHER_WEIGHT},
    }  # fmt: skip
    write_results("fusion", data, report(data))


if __name__ == "__main__":
    main()
