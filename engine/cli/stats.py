"""`adsearch stats`: what the collection holds."""

from __future__ import annotations

import argparse
import json

from engine.cli.common import Command, open_library, settings_of, store_options
from engine.settings import QUANT_MIN_AGREEMENT, QUANT_MIN_COSINE
from engine.terminal import printable


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "stats", help="what the collection holds", description="Collection size, text coverage, models."
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    store_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    with open_library(settings, load_models=False) as library:
        stats = library.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    where = printable(settings.qdrant_url or settings.db)
    print(f"collection {printable(stats['collection'])} ({stats['backend']}: {where})")
    print(f"  images:            {stats['images']}")
    print(f"  with OCR text:     {stats['with_text']} ({stats['ocr_coverage']:.0%})")
    print(f"  without OCR text:  {stats['without_text']}")
    print(f"  with CLIP vector:  {stats['with_image_vector']}")
    dup = stats["duplicates"]
    print(f"  with fingerprint:  {stats['with_creative_vector']}")
    if dup.get("skipped"):
        print(f"  duplicate groups:  {dup['skipped']}")
    else:
        print(f"  duplicate groups:  {dup['groups']} ({dup['images_in_groups']} images; same creative at "
              f"fingerprint cosine >= {dup['threshold']})")  # fmt: skip
    for group in dup["largest"][:5]:
        print(f"    {group['size']} copies, e.g. {printable(group['example'])}")
    print(f"  formats:           {', '.join(f'{k} {v}' for k, v in stats['formats'].items()) or '-'}")
    for channel, model in (stats["models"] or {}).items():
        print(f"  model {channel:<9}   {printable(model or 'none (CLIP weights unavailable)')}")
    for tower, check in ((stats.get("pipeline") or {}).get("quantisation") or {}).items():
        print(f"  int8 {tower:<10}   {_quantisation_line(check)}")
    print(f"  fusion:            {printable(_fusion_line(stats['fusion']))}")
    return 0


def _fusion_line(fusion: dict) -> str:
    """The fusion settings search uses, and where they came from."""
    weights = ", ".join(f"{c} {w:g}" for c, w in fusion["weights"].items())
    line = f"RRF k {fusion['rrf_k']}, weights {weights}, prefetch {fusion['prefetch_limit']}"
    tuned = fusion["tuned"]
    if not tuned:
        return line + " (built-in defaults)"
    figures = f"{tuned['metric']} {tuned['in_sample']:.4f}, cross-validated {tuned['cross_validated']:.4f}"
    return line + f" (tuned on {tuned['source']}: {figures})"


def _quantisation_line(check: dict) -> str:
    """One tower's int8 check as `adsearch stats` prints it."""
    if not check.get("checked", True) or "cosine" not in check:
        return f"{check.get('precision', '?')}, unchecked (PyTorch path)"
    from engine.models.onnx_towers import compared

    cosine = compared("cosine", check["cosine"], check.get("min_cosine", QUANT_MIN_COSINE))
    agreement = compared("agreement", check["agreement"], check.get("min_agreement", QUANT_MIN_AGREEMENT))
    return f"{check.get('precision', '?')}: {cosine}, top-10 {agreement} with fp32 on the probe set"


COMMAND = Command("stats", add_parser, run)
