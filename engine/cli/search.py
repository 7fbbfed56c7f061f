"""`adsearch search`: search the collection by text or image (or browse it)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import ValidationError

from engine.channels import modes
from engine.cli.common import Command, model_options, ocr_options, open_library, settings_of, store_options
from engine.cli.exporting import export_format, export_options, wants_export, write_export
from engine.errors import UsageError
from engine.search.request import DEFAULT_SORT, MAX_HITS, MAX_OFFSET, SearchRequest
from engine.settings.search import FUSIONS
from engine.terminal import printable

WHERE_HELP = (
    "only images where CLAUSE holds (repeatable, all must hold): brand=Audi, year>=2014, "
    "date<2015-01-01, 'topic in [cars,travel]', has_text=true, format!=GIF"
)
MODE_HELP = (
    "duplicate: other copies of the --image ad (resized, recompressed, cropped, restickered), "
    "by perceptual fingerprint, no model; only same-creative hits"
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "search",
        help="search the collection by text or image",
        description="Embed the query once per channel and let Qdrant fuse the channels (RRF). Modes: "
        "hybrid (image + text + keywords), visual (CLIP), text (dense OCR text), keyword (BM25 OCR text).",
    )
    p.add_argument("query", nargs="?", default="", help="text query (none: browse the filtered images)")
    p.add_argument("--image", type=Path, help="query by this image (its OCR text feeds the text channels)")
    p.add_argument("--mode", default="hybrid", choices=list(modes()), help=MODE_HELP)
    p.add_argument("-k", type=int, default=10, help="number of hits (default 10)")
    p.add_argument("--offset", type=int, default=0, help="skip this many hits (paging)")
    # weighs this one query: not the `weights` setting (ADSEARCH_WEIGHTS), which has no flag
    p.add_argument("--weights", help="RRF weights per channel, e.g. image=1,text=2,keywords=1")
    p.add_argument("--fusion", choices=FUSIONS, help=FUSION_HELP)
    p.add_argument("--where", action="append", default=[], metavar="CLAUSE", help=WHERE_HELP)
    p.add_argument("--sort", default=DEFAULT_SORT, help="browse order without a query (default ingested_at)")
    p.add_argument("--asc", action="store_true", help="browse in ascending order (default: descending)")
    p.add_argument(
        "--diverse", action="store_true", help="no near-copies: re-rank by maximal marginal relevance"
    )
    p.add_argument("--positive", action="append", default=[], metavar="ID", help="more like this image")
    p.add_argument("--negative", action="append", default=[], metavar="ID", help="unlike this image")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    export_options(p)
    store_options(p)
    model_options(p)
    ocr_options(p)
    return p


FUSION_HELP = (
    "fixed channel weights, or adaptive: weights read from the query (wording printed on an ad, or a "
    "keyword match that stands far above the rest, lets the keywords channel lead); default "
    "ADSEARCH_FUSION, else a saved `adsearch tune`, else adaptive. --weights wins over both"
)
# the arguments SearchRequest checks, and the flag each comes from (for the error line)
FLAGS = {"q": "the query", "mode": "--mode", "weights": "--weights", "where": "--where", "sort": "--sort",
         "positive": "--positive", "negative": "--negative", "fusion": "--fusion"}  # fmt: skip


def search_request(args: argparse.Namespace) -> SearchRequest:
    """The search the arguments ask for, checked against the limits SearchRequest declares (a
    terminal listing may ask for up to MAX_HITS hits); UsageError naming the flag."""
    if not 1 <= args.k <= MAX_HITS:
        raise UsageError(f"-k must be between 1 and {MAX_HITS}, not {args.k}")
    if not 0 <= args.offset <= MAX_OFFSET:
        raise UsageError(f"--offset must be between 0 and {MAX_OFFSET}, not {args.offset}")
    try:
        request = SearchRequest(
            q=args.query, mode=args.mode, offset=args.offset, weights=args.weights, where=args.where,
            sort=args.sort, order="asc" if args.asc else "desc", diverse=args.diverse,
            positive=args.positive, negative=args.negative, fusion=args.fusion,
        ).deeper(args.k)  # fmt: skip
    except ValidationError as exc:
        error = exc.errors()[0]
        raise UsageError(f"bad value for {FLAGS[error['loc'][0]]}: {error['msg']}") from None
    request.channel_weights()  # a bad --weights is reported before the store opens
    return request


def run(args: argparse.Namespace) -> int:
    from engine.media.originals import query_image
    from engine.search import IMAGE_OFF_NOTE

    request = search_request(args)  # every check on the arguments comes before the store and models
    export = export_format(args) if wants_export(args) else None
    settings = settings_of(args)
    image = query_image(args.image.read_bytes(), settings) if args.image else None
    with open_library(settings, need_collection=True) as library:
        if export:
            return export_results(library, request, image, args, export)
        response = library.search(request, image=image)
    if args.json:
        print(json.dumps(response.to_dict(), indent=2))
        return 0
    for note in response.notes:
        if note != IMAGE_OFF_NOTE:  # the model loader has said so in its one line
            print(f"note: {printable(note)}")
    label = args.query or (str(args.image) if args.image else "everything")
    about = "" if response.total_exact else "about "
    total = f" of {about}{response.total} matching" if response.total is not None else ""
    print(f"{len(response.hits)} hits{total} for '{printable(label)}' ({response.mode}: "
          f"{', '.join(response.channels)})")  # fmt: skip
    if response.fusion and len(response.channels) > 1:
        weights = ", ".join(f"{c}={w:g}" for c, w in response.fusion["weights"].items())
        print(f"fusion: {printable(response.fusion['reason'])} [{weights}]")
    for hit in response.hits:
        channels = " ".join(f"{c}#{m.rank}" for c, m in hit.channels.items()) or "-"
        path = hit.paths[0] if hit.paths else hit.id
        print(f"{hit.rank:>3}. {hit.score:.4f}  {printable(path)}  [{channels}]")
        if hit.snippet:
            print(f"       “{printable(hit.snippet)}”")
    return 0


def export_results(library, request: SearchRequest, image, args: argparse.Namespace, format: str) -> int:
    """Every matching ad (a ranked query: its ranking up to MAX_HITS) written as --format."""
    from engine.export.rows import parse_fields, results_export

    return write_export(results_export(library, request, parse_fields(args.fields), image), args, format)


COMMAND = Command("search", add_parser, run)
