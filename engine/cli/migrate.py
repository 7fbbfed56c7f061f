"""`adsearch migrate`: copy a collection between stores without re-running OCR."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.cli.common import Command, say, setting_flags, settings_of
from engine.errors import UsageError
from engine.settings import SERVER_FLAGS, Settings, StoreSection


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "migrate",
        help="copy a collection to a Qdrant server (or another folder) without re-running OCR",
        description="Copy every point (all vectors, payload, same ids) and the collection metadata "
        "from one store to another: an embedded folder to a Qdrant server or cluster when one machine "
        "is no longer enough, or back. No OCR, no encoding. Interrupted? Rerun: copied points are "
        "overwritten, the rest added; nothing in the target is deleted.",
    )
    p.add_argument("--from", dest="source", required=True, help="embedded store folder, or a Qdrant URL")
    p.add_argument("--to", dest="target", required=True, help="Qdrant URL (http://host:6333), or a folder")
    setting_flags(p, StoreSection, ["collection"], helps={"collection": "collection to copy (default ads)"})
    p.add_argument("--to-collection", help="name in the target (default: the same)")
    setting_flags(p, StoreSection, SERVER_FLAGS)
    # points per request, not the ingest setting of the same name
    p.add_argument("--batch-size", type=int, default=256, help="points per request (default 256)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _store_at(location: str, settings: Settings):
    """The store a --from/--to value names: a Qdrant URL, or an embedded store folder."""
    from engine.store import open_store

    if location.startswith(("http://", "https://")):
        return open_store(settings.with_overrides(qdrant_url=location))
    return open_store(settings.model_copy(update={"qdrant_url": None, "db": Path(location)}))


def run(args: argparse.Namespace) -> int:
    from engine.admin.migrate import copy_collection

    if not 1 <= args.batch_size <= 1024:  # a bigger request can pass a Qdrant server's 32 MB limit
        raise UsageError(f"--batch-size must be between 1 and 1024, not {args.batch_size}")
    if os.path.abspath(args.source) == os.path.abspath(args.target) and not args.to_collection:
        raise UsageError("--from and --to are the same store")
    base = settings_of(args)
    with _store_at(args.source, base) as source:
        target_settings = base.with_overrides(collection=args.to_collection)
        with _store_at(args.target, target_settings) as target:
            report = copy_collection(source, target, args.batch_size, progress=not args.no_progress)
    say(
        f"copied {report.copied} of {report.source_count} points from {args.source} to {args.target} "
        f"(collection '{target_settings.collection}' there now holds {report.target_count})"
    )
    return 0


COMMAND = Command("migrate", add_parser, run)
