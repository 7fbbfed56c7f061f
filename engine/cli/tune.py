"""`adsearch tune`: fusion settings (RRF k, weights, prefetch, adaptive rule) fitted to judged queries."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import Command, model_options, open_library, settings_of, store_options
from engine.errors import UsageError
from engine.terminal import printable


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "tune",
        help="choose fusion settings (RRF k, weights, prefetch) on labelled queries",
        description="Grid-search the hybrid fusion settings (RRF k, each channel's weight, prefetch "
        "depth, then the adaptive rule's coverage, stand-out ratio and weight over the best of them) on "
        "labelled queries against the current collection, scored as `evaluate` scores them. "
        "Prints the current settings' figure, the best cell's (in-sample) and a k-fold cross-validated "
        "figure (each fold's queries scored with the setting chosen on the other folds: what to expect "
        "on new queries), then the top cells. --save stores the best in the collection, where search "
        "(CLI, API, web UI) uses it as its default; ADSEARCH_RRF_K / _WEIGHTS / _PREFETCH_LIMIT / _FUSION / "
        "_EXACT_* in the environment still win. A running server picks it up when restarted.",
    )
    p.add_argument("--queries", type=Path, help="query file: query_id<TAB>text per line")
    p.add_argument("--qrels", type=Path, help="TREC qrels: query_id 0 image_key grade")
    p.add_argument("--metric", default="ndcg@10", help="what to maximise: ndcg@10 (default), mrr@10, "
                   "recall@10, p@10, recall@1, recall@5")  # fmt: skip
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds over queries (default 5)")
    p.add_argument("--save", action="store_true", help="store the best settings as this collection's default")
    p.add_argument("--forget", action="store_true", help="drop saved settings: back to the built-in defaults")
    p.add_argument("--grid", type=Path, help="write every cell and its figure to this TSV file")
    p.add_argument("--root", type=Path, help="folder the image keys are relative to")
    store_options(p)
    model_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from engine.quality.evaluate import read_qrels, read_queries
    from engine.quality.tune import forget, grid_tsv, report_lines, save, tune

    if args.forget:
        with open_library(settings_of(args), need_collection=True, load_models=False) as library:
            forget(library)
        print("saved fusion settings dropped: search uses the built-in defaults (or the environment's)")
        return 0
    if not (args.queries and args.qrels):
        raise UsageError("give --queries and --qrels (or --forget)")
    if not 2 <= args.folds <= 20:
        raise UsageError(f"--folds must be between 2 and 20, not {args.folds}")
    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    with open_library(settings_of(args), need_collection=True) as library:

        def progress(done: int, total: int) -> None:
            if done == total or done % 25 == 0:
                print(f"\rranking queries: {done}/{total}", end="\n" if done == total else "", flush=True)

        result = tune(library, queries, qrels, args.metric, args.folds, root=args.root, progress=progress)
        print("\n".join(printable(line) for line in report_lines(result)))
        if args.grid:
            args.grid.write_text(grid_tsv(result))
            print(f"wrote {len(result.cells)} cells to {printable(args.grid)}")
        if args.save:
            record = save(library, result, source=f"{args.queries.name} / {args.qrels.name}")
            figures = f"{record['metric']} {record['in_sample']:.4f}, cv {record['cross_validated']:.4f}"
            print(f"saved as this collection's search default: {printable(result.best.label())} ({figures})")
    return 0


COMMAND = Command("tune", add_parser, run)
