"""`adsearch`: one module per command (engine/cli/<command>.py, each with its COMMAND), the registry
of them here, and the commands other packages add (`Command`, entry point group COMMAND_GROUP:
`serve` comes from api/command.py). A thin face over the engine's functions."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from functools import cache

from engine.cli import (
    backup,
    board,
    doctor,
    evaluate,
    facets,
    ingest,
    migrate,
    models,
    ocr,
    restore,
    search,
    stats,
    trend,
    tune,
    watch,
)
from engine.cli.common import (
    SETTING_ACTIONS,
    Command,
    model_options,
    ocr_options,
    open_library,
    say,
    setting_flags,
    settings_of,
    store_options,
)
from engine.errors import AdsearchError, UsageError
from engine.terminal import PrintableFormatter, printable

__all__ = [
    "BUILT_IN", "COMMANDS", "COMMAND_GROUP", "Command", "UsageError", "added_commands", "build_parser",
    "main", "model_options", "ocr_options", "open_library", "say", "setting_flags", "settings_of",
    "store_options",
]  # fmt: skip

# the built-in commands, in the order `--help` lists them (an added command asks for its place: `after`)
BUILT_IN = (ingest.COMMAND, search.COMMAND, evaluate.COMMAND, tune.COMMAND, ocr.COMMAND, migrate.COMMAND,
            facets.COMMAND, board.COMMAND, trend.COMMAND, watch.COMMAND, backup.COMMAND, restore.COMMAND,
            doctor.COMMAND, stats.COMMAND, models.COMMAND)  # fmt: skip
COMMANDS: dict[str, Command] = {command.name: command for command in BUILT_IN}
COMMAND_GROUP = "adsearch.commands"

EPILOG = """examples:
  adsearch ingest ./my-ads                       # OCR + embed every image below ./my-ads
  adsearch search "cheap burger deal"            # hybrid search (all channels, RRF fusion)
  adsearch search "Audi A7" --mode keyword -k 5  # BM25 over the OCR text only
  adsearch search --image query.jpg              # query by image
  adsearch ocr ad.jpg                            # what each OCR reader reads in one image
  adsearch stats                                 # what the collection holds
  adsearch serve                                 # web UI + JSON API on http://127.0.0.1:8000
  adsearch evaluate --queries q.tsv --qrels q.qrels   # MRR, Recall, nDCG, MAP per mode
  adsearch tune --queries q.tsv --qrels q.qrels --save   # fusion settings fitted to your judgments
  adsearch migrate --from adsearch-data --to http://qdrant:6333   # embedded -> server, no re-OCR

Every option can also be set in the environment as ADSEARCH_<OPTION> (e.g. ADSEARCH_DB=/data/ads)."""


@cache
def added_commands() -> dict[str, Command]:
    """The commands installed packages register under COMMAND_GROUP, by name."""
    from importlib.metadata import entry_points

    found = {}
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        command = entry.load()
        if command.name in COMMANDS or command.name in found:
            raise UsageError(f"command '{command.name}' ({entry.value}) is registered twice")
        found[command.name] = command
    return found


def build_parser() -> argparse.ArgumentParser:
    """The `adsearch` parser: the built-in commands, then the added ones where they asked to be."""
    parser = argparse.ArgumentParser(
        prog="adsearch",
        description="Hybrid OCR + visual search for image ads: OCR text (PP-OCR, Tesseract), CLIP, dense "
        "and BM25 vectors in Qdrant, fused with reciprocal rank fusion.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in BUILT_IN:
        command.add_parser(sub)
    for command in added_commands().values():
        command.add_parser(sub)
        if command.after:
            _list_after(sub, command.name, command.after)
    return parser


def _list_after(sub: argparse._SubParsersAction, name: str, after: str) -> None:
    """Move an added command next to the built-in one it belongs after, in `--help` and in choices."""
    choices = list(sub.choices.items())
    moved = next(item for item in choices if item[0] == name)
    choices.remove(moved)
    at = next(i for i, (n, _) in enumerate(choices) if n == after) + 1
    sub.choices.clear()
    sub.choices.update([*choices[:at], moved, *choices[at:]])
    helps = sub._choices_actions  # argparse keeps the help lines in a list of its own
    line = next(a for a in helps if a.dest == name)
    helps.remove(line)
    helps.insert(next(i for i, a in enumerate(helps) if a.dest == after) + 1, line)


def _option_for(parser: argparse.ArgumentParser, command: str, field: str) -> str | None:
    """The flag of `command` made from the Settings field `field`'s Flag (e.g. --batch-size), if any."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            for option in action.choices[command]._actions:
                if option in SETTING_ACTIONS and option.dest == field:
                    return max(option.option_strings, key=len)
    return None


def _bad_value(error: dict, parser: argparse.ArgumentParser, command: str) -> str:
    """One line for one pydantic error: which option / environment variable, and why."""
    reason = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return f"bad settings: {reason}"
    field, *inside = error["loc"]
    name = f"ADSEARCH_{str(field).upper()}" + "".join(f"[{part}]" for part in inside)
    option = _option_for(parser, command, str(field))
    return f"bad value for {option} / {name}: {reason}" if option else f"bad setting {name}: {reason}"


def _quiet_libraries(verbose: bool) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", module="transformers")
    handler = logging.StreamHandler()  # log messages name files: no control characters reach the terminal
    handler.setFormatter(PrintableFormatter("adsearch: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `adsearch` console script."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ocr_text import TesseractMissingError

    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries(args.verbose)
    try:
        command = COMMANDS.get(args.command) or added_commands()[args.command]
        return command.run(args)
    except (AdsearchError, TesseractMissingError) as exc:
        print(f"adsearch: error: {printable(exc)}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"adsearch: error: {printable(exc.filename)}: no such file", file=sys.stderr)
        return 2
    except IsADirectoryError as exc:
        folder = printable(exc.filename)
        print(f"adsearch: error: {folder}: is a folder; give one image file", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a bad ADSEARCH_* environment variable or a bad option value
        for error in exc.errors():
            print(f"adsearch: error: {printable(_bad_value(error, parser, args.command))}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # an ADSEARCH_* variable that is not even parseable (e.g. not JSON)
        reason = printable(exc)
        print(f"adsearch: error: bad setting: {reason} (lists are JSON, e.g. '[700, 1600]')", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adsearch: interrupted; what was stored so far is kept, rerun to resume", file=sys.stderr)
        return 130
