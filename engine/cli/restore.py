"""`adsearch restore FROM --db DIR` (or `--check`): a backup back into a new library."""

from __future__ import annotations

import argparse
import json

from engine.cli.common import Command, say, settings_of, store_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "restore",
        help="restore a backup into a new library, or --check one",
        description="Verify a backup made by `adsearch backup` (every file's size and sha256 against its "
        "manifest), then write it into a new library: --db must be a new or empty folder (nothing is "
        "overwritten; the library is built beside it and renamed when complete, so an interrupted "
        "restore can simply be run again). Paths of uploaded files move to the new library's uploads "
        "folder; images ingested from other folders keep their paths.",
    )
    p.add_argument("source", metavar="FROM", help="the backup's folder or fsspec URL")
    p.add_argument("--check", action="store_true", help="only verify the backup; write nothing")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    store_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from engine.admin.restore import check_backup, restore_backup

    if args.check:
        manifest = check_backup(args.source)
        result = {"ok": True, "files": len(manifest["files"]), "counts": manifest["counts"],
                  "created_at": manifest["created_at"], "collection": manifest["collection"]}  # fmt: skip
        text = (f"{args.source}: backup OK ({result['files']} files match the manifest; "
                f"taken {result['created_at']})")  # fmt: skip
    else:
        result = restore_backup(args.source, settings_of(args), progress=not args.no_progress)
        text = (f"restored {result['points']} points of collection '{result['collection']}' "
                f"(backup of {result['created_at']}) into {result['restored']}")  # fmt: skip
    print(json.dumps(result, indent=1)) if args.json else say(text)
    return 0


COMMAND = Command("restore", add_parser, run)
