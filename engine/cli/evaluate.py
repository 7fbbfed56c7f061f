"""`adsearch evaluate`: retrieval quality on labelled queries, per mode."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.channels import modes as search_modes
from engine.cli.common import Command, model_options, open_library, settings_of, store_options
from engine.errors import UsageError
from engine.terminal import printable, printable_lines


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="measure retrieval quality on labelled queries",
        description="Run every query in every mode against the current collection and report MRR@k, "
        "Recall@1/5/k, P@k, nDCG@k and MAP@100 per mode (ir-measures). Writes OUT (markdown), one TREC "
        "run file per mode, a per-query TSV and a PNG chart beside it. Image keys in the qrels are the "
        "stored paths relative to --root (default: the folder that holds every stored image).",
    )
    p.add_argument("--queries", type=Path, required=True, help="query file: query_id<TAB>text per line")
    p.add_argument("--qrels", type=Path, required=True, help="TREC qrels: query_id 0 image_key grade")
    p.add_argument(
        "--modes", default="hybrid,visual,text,keyword", help="comma-separated (default: all four)"
    )
    p.add_argument("-k", type=int, default=10, help="metric cutoff (default 10)")
    p.add_argument("--root", type=Path, help="folder the image keys are relative to")
    p.add_argument("--out", type=Path, default=Path("evaluation/report.md"), help="report path (.md)")
    store_options(p)
    model_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from engine.quality.evaluate import evaluate, read_qrels, read_queries, report_markdown, write_report

    modes = list(dict.fromkeys(m.strip() for m in args.modes.split(",") if m.strip()))  # each once
    known = search_modes()
    unknown = [m for m in modes if m not in known]
    if unknown:
        raise UsageError(f"unknown mode(s) {', '.join(unknown)}: use {', '.join(known)}")
    if not modes:
        raise UsageError(f"--modes names no mode: use one or more of {', '.join(known)}")
    if not 1 <= args.k <= 100:
        raise UsageError(f"-k must be between 1 and 100, not {args.k}")
    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    settings = settings_of(args)
    with open_library(settings, need_collection=True) as library:
        result = evaluate(library, queries, qrels, modes, k=args.k, root=args.root)
    title = f"Evaluation: {args.queries.name}"
    files = write_report(result, args.out, title=title)
    print(printable_lines(report_markdown(result, title)))
    print("wrote " + ", ".join(printable(f) for f in files))
    return 0


COMMAND = Command("evaluate", add_parser, run)
