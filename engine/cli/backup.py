"""`adsearch backup --to DIR_OR_URL`: a consistent copy of the library (engine.admin.backup)."""

from __future__ import annotations

import argparse
import json

from engine.cli.common import Command, open_library, say, settings_of, store_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "backup",
        help="copy the whole library (points, boards, watches, jobs, uploads) to a folder or URL",
        description="Write a backup of the library to a new folder or an fsspec URL (s3://bucket/path): "
        "the points with every vector and payload as Parquet, the collection metadata (boards, saved "
        "tuning, models), the watches, the job journal and the uploaded files, and a manifest with a "
        "sha256 per file, written last. Store writes wait while it is taken; searches go on. A running "
        "`adsearch serve` holds the embedded store: back it up through POST /api/admin/backup instead. "
        "`adsearch restore --check FROM` verifies a backup; `adsearch restore FROM --db DIR` restores it.",
    )
    p.add_argument("--to", dest="destination", required=True, metavar="DIR_OR_URL",
                   help="a new or empty folder, or an fsspec URL")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    store_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from engine.admin.backup import backup_library

    library = open_library(settings_of(args), need_collection=True, load_models=False)
    with library:
        manifest = backup_library(library, args.destination, progress=not args.no_progress)
    if args.json:
        print(json.dumps(manifest, indent=1))
    else:
        counts = ", ".join(f"{n} {what}" for what, n in manifest["counts"].items())
        size = sum(f["bytes"] for f in manifest["files"].values())
        say(f"backed up collection '{manifest['collection']}' to {args.destination}: {counts} "
            f"({len(manifest['files'])} files, {size / 2**20:.1f} MiB)")  # fmt: skip
    return 0


COMMAND = Command("backup", add_parser, run)
