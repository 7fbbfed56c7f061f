"""Retrieval quality on the 377 real ads of ads377: both dev query sets, every mode.

Ingests `../shared/data/ads377/images` (text channels only: CLIP weights cannot be downloaded here;
`--clip-model DIR` with real weights adds the visual and hybrid-with-visual rows), then runs
`adsearch evaluate`'s code on the known-item (265) and topic (14) query sets.
`--tune` first sweeps the fusion settings (RRF k, channel weights, prefetch depth) on the same
dev sets and reports the grid; the chosen values are the defaults in engine/config.py.

    .venv/bin/python -m bench.quality [--clip-model DIR] [--tune]
"""

from __future__ import annotations

import argparse
import itertools

from bench.common import ADS377, WORK, write_results
from engine.config import Settings
from engine.evaluate import evaluate, read_qrels, read_queries
from engine.library import Library

SETS = ("known_item", "topic")
KEYS = ("mrr@10", "recall@1", "recall@5", "recall@10", "p@10", "ndcg@10", "map@100")


def load_sets() -> dict[str, tuple[dict, dict]]:
    q = ADS377 / "queries"
    return {name: (read_queries(q / f"{name}.tsv"), read_qrels(q / f"{name}.qrels")) for name in SETS}


def objective(results: dict) -> float:
    """What tuning maximises: known-item MRR@10 and topic nDCG@10 of hybrid, equally weighted."""
    return (results["known_item"]["mrr@10"] + results["topic"]["ndcg@10"]) / 2


def targets(results: dict, no_text: int) -> list[dict]:
    """The quality targets (issue #11, raised from #4's) against the measured figures."""
    known, topic = results["known_item"], results["topic"]

    def best_single(rows, metric):
        return max(rows[m][metric] for m in ("text", "keyword", "visual") if m in rows)

    checks = [
        ("known-item hybrid MRR@10 >= 0.48", known["hybrid"]["mrr@10"], 0.48),
        ("known-item hybrid Recall@10 >= 0.62", known["hybrid"]["recall@10"], 0.62),
        ("topic hybrid nDCG@10 >= 0.62", topic["hybrid"]["ndcg@10"], 0.62),
        (
            "known-item hybrid MRR@10 >= best single channel",
            known["hybrid"]["mrr@10"],
            best_single(known, "mrr@10"),
        ),
        (
            "topic hybrid nDCG@10 >= best single channel",
            topic["hybrid"]["ndcg@10"],
            best_single(topic, "ndcg@10"),
        ),
    ]
    rows = [{"target": t, "measured": round(v, 3), "met": v >= goal} for t, v, goal in checks]
    rows.append({"target": "ads with no OCR text <= 60 of 377", "measured": no_text, "met": no_text <= 60})
    return rows


def run_sets(library: Library, sets, modes) -> dict[str, dict[str, dict[str, float]]]:
    out = {}
    for name, (queries, qrels) in sets.items():
        out[name] = evaluate(library, queries, qrels, modes, k=10).metrics
    return out


def tune(library: Library, sets) -> list[dict]:
    """Grid over RRF k, text/keyword weights and prefetch depth (hybrid mode only)."""
    grid = []
    base = library.settings
    for rrf_k, text_w, prefetch in itertools.product([3, 5, 8, 10, 20, 60], [1.0, 2.0, 3.0, 4.0], [30, 100]):
        weights = {"image": 1.0, "text": text_w, "keywords": 1.0}
        # the searcher reads these per query; its cache keeps the query embeddings between configs
        library.searcher.settings = base.with_overrides(rrf_k=rrf_k, weights=weights, prefetch_limit=prefetch)
        metrics = run_sets(library, sets, ["hybrid"])
        row = {"rrf_k": rrf_k, "text_weight": text_w, "prefetch": prefetch}
        row |= {f"{s}_{m}": metrics[s]["hybrid"][m] for s in SETS for m in ("mrr@10", "recall@10", "ndcg@10")}
        row["objective"] = round(objective({s: metrics[s]["hybrid"] for s in SETS}), 4)
        grid.append(row)
        print(row, flush=True)
    library.searcher.settings = base
    return sorted(grid, key=lambda r: -r["objective"])


def readers_section() -> list[str]:
    """The OCR reader grid (bench/readers.py's latest results), which decided the default readers."""
    from bench.common import RESULTS

    path = RESULTS / "readers.md"
    if not path.exists():
        return []
    body = path.read_text().split("\n", 1)[1]  # without its title
    return ["", "## OCR readers: the grid that chose the default (from bench/results/readers.md)", body]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip-model", help="local folder with real CLIP weights: adds the visual rows")
    parser.add_argument("--tune", action="store_true", help="sweep fusion settings first")
    args = parser.parse_args(argv)
    db = WORK / ("quality-db-clip" if args.clip_model else "quality-db")
    settings = Settings(
        db=db,
        clip_model=args.clip_model or str(WORK / "no-clip-weights"),
        require_visual=bool(args.clip_model),
    )
    sets = load_sets()
    with Library(settings) as library:
        report = library.ingest([ADS377 / "images"])
        print(report.summary(), flush=True)
        images = library.store.count()
        no_text = images - library.store.count("text")
        grid = tune(library, sets) if args.tune else []
        modes = ["hybrid", "text", "keyword"] + (["visual"] if args.clip_model else [])
        results = run_sets(library, sets, modes)
    data = {
        "images": images,
        "no_text_images": no_text,
        "known_item": results["known_item"],
        "topic": results["topic"],
        "settings": {
            "rrf_k": settings.rrf_k,
            "weights": settings.weights,
            "prefetch_limit": settings.prefetch_limit,
            "ocr": settings.ocr_settings().signature(),
            "clip": args.clip_model or "none (text channels only)",
        },
        "tuning_top": grid[:10],
        "targets": targets(results, no_text),
    }
    md = [
        "# Retrieval quality on ads377 (377 real ads)",
        "",
        f"Channels: {'image (CLIP), ' if args.clip_model else ''}text (all-MiniLM-L6-v2 on OCR text), "
        f"keywords (BM25 on OCR text). Fusion: RRF k={settings.rrf_k}, weights {settings.weights}, "
        f"prefetch {settings.prefetch_limit}. OCR: `{data['settings']['ocr']}`. "
        "Metrics: ir-measures, every query counted.",
        "",
        f"Ads with no OCR text: **{no_text} of {images}**.",
        "",
        "## Targets (issue #11, text channels)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |" for t in data["targets"]),
    ]
    for name in SETS:
        md += ["", f"## {name} ({results[name]['hybrid']['queries']} queries)", ""]
        md += ["| mode | " + " | ".join(KEYS) + " |", "|---" * (len(KEYS) + 1) + "|"]
        for mode, m in results[name].items():
            md.append(f"| {mode} | " + " | ".join(f"{m[k]:.3f}" for k in KEYS) + " |")
    if grid:
        md += [
            "",
            "## Fusion tuning (hybrid, both dev sets)",
            "",
            "Top 10 of the grid by (known-item MRR@10 + topic nDCG@10) / 2:",
            "",
        ]
        cols = list(grid[0])
        md += ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
        md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in grid[:10]]
        md += [
            "",
            "Choice (OCR by PP-OCR v6-tiny, issue #11): RRF k = 3, text weight 3, prefetch 100. It is",
            "within 0.0002 of the top cell's objective and the only cell near the top where hybrid beats",
            "every single channel on both sets (k = 3 with text weight 2 scores 0.462 known-item MRR@10",
            "but its topic nDCG@10, 0.581, falls below the dense text channel's 0.586). Prefetch 30 and 100",
            "tie. Qdrant's weighted RRF divides the rank by the weight: score = sum over channels of",
            "1 / (k - 1 + rank / w).",
            "",
            "The targets of issue #11 (known-item MRR@10 >= 0.48, Recall@10 >= 0.62, topic nDCG@10 >= 0.62)",
            "are not met by the default readers: the grid below shows the best OCR text measured",
            "(PP-OCRv5, with or without Tesseract) reaching known-item 0.476 / 0.626 at 6x the OCR cost,",
            "which fails the ingest-speed rule on these 2 cores. No fusion cell lifts topic nDCG@10 above",
            "0.59: the misses are ads whose text never names their category, the image channel's job.",
        ]
    md += readers_section()
    write_results("quality", data, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
