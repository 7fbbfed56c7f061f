"""The export flags a listing command adds (`search`, `facets`, and any other table a command prints):
--format, --out, --fields; and writing an engine.export table to where they say."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.errors import UsageError
from engine.export import format_names, write_rows, writer_for
from engine.export.rows import Export
from engine.terminal import printable


def export_options(parser: argparse.ArgumentParser, fields: bool = True) -> None:
    """Add --format, --out (and --fields) to a command's parser."""
    group = parser.add_argument_group("export")
    names = ", ".join(format_names())
    group.add_argument("--format", help=f"write every row as {names} (to --out, or csv/jsonl to stdout)")
    group.add_argument("--out", type=Path, metavar="FILE", help="the file to write (format from its suffix)")
    if fields:
        group.add_argument(
            "--fields", metavar="A,B", help="payload fields to export (default: every scalar field)"
        )


def wants_export(args: argparse.Namespace) -> bool:
    """Whether the command is asked to export (--format or --out) rather than to list."""
    return bool(args.format or args.out)


def export_format(args: argparse.Namespace) -> str:
    """The format asked for: --format, else the suffix of --out; UsageError when neither says."""
    if args.json and wants_export(args):
        raise UsageError("--json prints a listing; --format/--out export every row: give one of them")
    if args.out is not None:
        _check_writable(args.out)
    if args.format:
        writer = writer_for(args.format)
        if args.out is None and not writer.streams_to_stdout:
            raise UsageError(f"{writer.name} is a binary format: give a file to write it to (--out FILE)")
        return writer.name
    by_suffix = {writer_for(name).suffix: name for name in format_names()}
    name = by_suffix.get(args.out.suffix.lower())
    if name is None:
        names = ", ".join(format_names())
        raise UsageError(f"give --format ({names}): the suffix of {printable(str(args.out))} does not say")
    return name


def _check_writable(path: Path) -> None:
    """UsageError now, before any search runs, when `path` cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--out {printable(str(path))} is a folder: give a file name")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UsageError(f"--out {printable(str(path))}: cannot write in {printable(str(folder))}")


def write_export(export: Export, args: argparse.Namespace, format: str) -> int:
    """Write the table to --out (one summary line) or to stdout (the summary on stderr); exit 0."""
    count = write_rows(export.rows, export.columns, format, args.out)
    where = printable(str(args.out)) if args.out else "stdout"
    print(f"wrote {count} rows ({printable(export.what)}) as {format} to {where}",
          file=sys.stdout if args.out else sys.stderr)  # fmt: skip
    return 0
