"""`adsearch models download | check`: model weights for a machine without network."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli.common import Command, say
from engine.errors import UsageError
from engine.settings import DEFAULT_CLIP_MODEL
from engine.terminal import printable


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "models",
        help="download the model weights for a machine without network, or check such a folder",
        description="`models download` fetches the CLIP weights from the Hugging Face hub (or copies a "
        "local model folder) into DIR/clip with DIR/manifest.json (model ids, revisions, file hashes); "
        "the dense text model, BM25 and PP-OCR ship inside installed packages and are only recorded. "
        "`models check DIR` verifies such a folder without network. Then use --clip-model DIR/clip "
        "(or ADSEARCH_CLIP_MODEL=DIR/clip) on the offline machine.",
    )
    models_sub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    m = models_sub.add_parser(
        "download",
        help="fetch the CLIP weights into a folder, with a manifest",
        description="Fetch CLIP's config, tokenizer, image processor and weights (safetensors when the "
        "repository has them) with huggingface_hub into DIR/clip and write DIR/manifest.json.",
    )
    m.add_argument(
        "--clip",
        default=None,
        metavar="MODEL_ID",
        help="Hugging Face id or local model folder (default openai/clip-vit-base-patch32)",
    )
    m.add_argument("--revision", help="branch, tag or commit of the hub repository (default main)")
    m.add_argument("--to", type=Path, required=True, metavar="DIR", help="folder to write")
    m = models_sub.add_parser(
        "check",
        help="verify a downloaded folder offline (hashes, loads, vector sizes)",
        description="Recompute every file hash against DIR/manifest.json, load DIR/clip with no network, "
        "encode one image and one text and compare the vector size with the width the model declares. "
        "Exit status: 0 all checks pass, 1 some failed, 2 usage error.",
    )
    m.add_argument("folder", type=Path, metavar="DIR", help="a folder written by `models download`")
    return p


def run(args: argparse.Namespace) -> int:
    return _download(args) if args.models_command == "download" else _check(args)


def _download(args: argparse.Namespace) -> int:
    from engine.models import download as models

    clip = args.clip or DEFAULT_CLIP_MODEL
    at = f" @ {args.revision}" if args.revision else ""
    say(f"fetching CLIP {clip}{at} into {args.to}", flush=True)
    path = models.download(clip, args.to, args.revision)
    manifest = json.loads(path.read_text())
    entry = manifest["models"]["clip"]
    folder = args.to / entry["folder"]
    for name in entry["files"]:
        say(f"  {entry['folder']}/{name}  {(folder / name).stat().st_size:,} bytes")
    say(f"clip: {entry['source']} @ {entry['revision'] or 'local copy'}")
    for name, other in manifest["models"].items():
        if other.get("bundled"):
            say(f"{name}: {other['source']} (bundled in {other['package']} {other['version']})")
    say(f"manifest: {path}")
    say(f"check it with `adsearch models check {args.to}`; use it with --clip-model {folder}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from engine.models import download as models

    if not args.folder.is_dir():
        raise UsageError(f"{args.folder} is not a folder")
    report = models.check(args.folder)
    for line in report.lines:
        print(printable(line))
    if not report.ok:
        print(f"{printable(args.folder)}: checks failed")
        return 1
    clip_dir = args.folder / models.CLIP_FOLDER
    say(f"all checks passed: use it with --clip-model {clip_dir} (or ADSEARCH_CLIP_MODEL={clip_dir})")
    return 0


COMMAND = Command("models", add_parser, run)
