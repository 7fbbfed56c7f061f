"""`adsearch facets`: how many images have each value of a field."""

from __future__ import annotations

import argparse
import json

from engine.cli.common import Command, open_library, settings_of, store_options
from engine.cli.exporting import export_format, export_options, wants_export, write_export
from engine.errors import UsageError
from engine.terminal import printable


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "facets",
        help="count the images per value of a field",
        description="How many images have each value of FIELD (a keyword, list or integer field: built-in "
        "ones such as format, folder, width, or metadata given at ingest), among those matching --where.",
    )
    p.add_argument("field", help="the field to count, e.g. brand, topic, format, folder")
    p.add_argument("--where", action="append", default=[], metavar="CLAUSE", help="as in `search`")
    p.add_argument("--limit", type=int, default=20, help="at most this many values (default 20, max 200)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    export_options(p, fields=False)
    store_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 200:
        raise UsageError("--limit must be between 1 and 200")
    export = export_format(args) if wants_export(args) else None
    settings = settings_of(args)
    with open_library(settings, load_models=False, need_collection=True) as library:
        if export:
            from engine.export.rows import facets_export

            return write_export(facets_export(library, args.field, args.where, args.limit), args, export)
        counts = library.facets(args.field, args.where, args.limit)
    if args.json:
        print(json.dumps(counts, indent=2))
        return 0
    print(f"{printable(args.field)} ({counts['type']}):")
    for row in counts["values"]:
        print(f"  {row['count']:>7}  {printable(row['value'])}")
    return 0


COMMAND = Command("facets", add_parser, run)
