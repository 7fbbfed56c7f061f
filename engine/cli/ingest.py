"""`adsearch ingest`: add images to the collection."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import (
    Command,
    model_options,
    ocr_options,
    open_library,
    setting_flags,
    settings_of,
    store_options,
)
from engine.errors import UsageError
from engine.settings import IngestSection
from engine.terminal import printable

METADATA_HELP = (
    "per-image fields (advertiser, brand, date, topics, ...) from a CSV or JSON Lines file with a "
    "`path` column (relative to the folder given) or a `sha256` column; filter with search --where. "
    "Run again with a changed file to update the fields without re-OCR. Bad rows: one line each, skipped"
)
SCHEMA_HELP = (
    'field types for --metadata: JSON {"field": "type"}, types keyword, keywords (list; CSV cells '
    "split on ';'), integer, float, datetime, bool (stored as keyword true/false). Default: inferred"
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "ingest",
        help="add a folder of images to the collection",
        description="Read images (JPEG, PNG, BMP, WEBP, GIF first frame, TIFF) recursively, OCR them "
        "in parallel, embed and store one point per distinct image. Unchanged files are skipped; "
        "identical bytes under several paths become one point. Bad files are reported and skipped. "
        "Every image gets the fields folder, format, width, height, bytes, has_text, ocr_confidence, "
        "ingested_at and file_date; --metadata adds your own. "
        "Exit status: 0 all good, 1 some files or metadata rows failed, 2 nothing could run.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="SOURCE",
        help="image files or folders, or fsspec URLs: s3://bucket/prefix, gs://..., file:///..., "
        "https://host/list.txt (a .txt/.lst URL lists image URLs, one per line; s3/gs/http need "
        "the s3fs/gcsfs/aiohttp packages: pip install 'adsearch[s3]')",
    )
    setting_flags(p, IngestSection)  # --workers, --batch-size, --cluster
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--metadata", type=Path, metavar="FILE", help=METADATA_HELP)
    p.add_argument("--schema", type=Path, metavar="FILE", help=SCHEMA_HELP)
    store_options(p)
    model_options(p)
    ocr_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.ingest.metadata import load_metadata
    from engine.media.sources import is_url

    settings = settings_of(args)
    if args.schema and not args.metadata:
        raise UsageError("--schema gives the types of a --metadata file: give that file too")

    def on_error(path: str, reason: str) -> None:
        tqdm.write(f"error: {printable(path)}: {printable(reason)}", file=sys.stderr)

    with open_library(settings, load_models=False) as library:
        extra = {}
        if args.metadata:  # read and checked before the models load: a bad file fails fast
            recorded = library.store.metadata().get("fields") or {}
            extra["metadata"] = load_metadata(args.metadata, args.schema, known=recorded)
            print(printable(extra["metadata"].describe()))
        library.encoders  # noqa: B018 (load now: a CLIP failure is reported before any work)
        sources = [p if is_url(p) else Path(p) for p in args.paths]
        report = library.ingest(sources, on_error, progress=not args.no_progress, **extra)
        total = library.store.count()
    print(printable(report.summary()))
    print(f"collection '{printable(settings.collection)}' now holds {total} images")
    return 1 if report.failed or report.metadata_skipped else 0


COMMAND = Command("ingest", add_parser, run)
