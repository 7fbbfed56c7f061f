"""`adsearch board create | list | show | add | remove | delete | like | export`: boards (swipe files)
of ads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.boards import check_name
from engine.channels import modes
from engine.cli.common import Command, model_options, open_library, settings_of, store_options
from engine.cli.exporting import export_format, export_options, wants_export, write_export
from engine.errors import UsageError
from engine.export import format_names
from engine.export.board_zip import write_board_zip
from engine.export.rows import board_export, parse_fields
from engine.search.request import MAX_HITS, MAX_OFFSET
from engine.terminal import printable

NAME_HELP = "the board's name (case does not count)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "board",
        help="keep ads on named boards (swipe files), list them, find more like them",
        description="Boards are named sets of ads. An ad's boards are a field of it (`boards`), so "
        "`adsearch search --where board=NAME` and `adsearch facets board` work like any field; boards "
        "survive re-ingest and `migrate`. Deleting a board keeps its images.",
    )
    actions = p.add_subparsers(dest="board_action", required=True, metavar="ACTION")
    a = _action(actions, "create", "make a new board")
    a.add_argument("name", help="1-64 letters, digits, spaces, _ or -, starting with a letter or digit")
    a.add_argument("--description", default="", help="what the board is for (at most 500 characters)")
    _action(actions, "list", "every board with its number of ads")
    a = _action(actions, "show", "a board's ads, newest ingested first")
    a.add_argument("name", help=NAME_HELP)
    a.add_argument("-k", type=int, default=20, help=f"ads to list (default 20, at most {MAX_HITS})")
    a.add_argument("--offset", type=int, default=0, help="skip this many ads (paging)")
    for action, words in (("add", "put images on a board"), ("remove", "take images off a board")):
        a = _action(actions, action, words)
        a.add_argument("name", help=NAME_HELP)
        a.add_argument("ids", nargs="+", metavar="ID", help="image ids (as search hits show them)")
    a = _action(actions, "delete", "delete a board (its images stay in the collection)")
    a.add_argument("name", help=NAME_HELP)
    words = "write a board's original images and a manifest.csv into a zip file (--zip), or its ads"
    a = _action(actions, "export", f"{words} as a table (--format: id, added_order, paths, ocr_text, fields)")
    a.add_argument("name", help=NAME_HELP)
    a.add_argument("--zip", type=Path, metavar="FILE", help="the zip file to write (or give --format)")
    export_options(a)
    a = _action(actions, "like", "more like this board: images like its ads that are not on it")
    a.add_argument("name", help=NAME_HELP)
    a.add_argument("-k", type=int, default=10, help=f"number of hits (default 10, at most {MAX_HITS})")
    a.add_argument("--mode", default="hybrid", choices=list(modes()), help="channels to search")
    a.add_argument("--where", action="append", default=[], metavar="CLAUSE", help="as in `search`")
    model_options(a)
    return p


def _action(actions, name: str, words: str) -> argparse.ArgumentParser:
    a = actions.add_parser(name, help=words, description=words[0].upper() + words[1:] + ".")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    store_options(a)
    return a


def run(args: argparse.Namespace) -> int:
    k = getattr(args, "k", 1)
    if not 1 <= k <= MAX_HITS:
        raise UsageError(f"-k must be between 1 and {MAX_HITS}, not {k}")
    if not 0 <= getattr(args, "offset", 0) <= MAX_OFFSET:
        raise UsageError(f"--offset must be between 0 and {MAX_OFFSET}, not {args.offset}")
    if hasattr(args, "name"):
        check_name(args.name)  # a bad name is said before the store opens
    table = _table_format(args) if args.board_action == "export" else None
    settings = settings_of(args)
    loads_models = args.board_action == "like"
    with open_library(settings, need_collection=True, load_models=loads_models) as library:
        if table:
            return write_export(board_export(library, args.name, parse_fields(args.fields)), args, table)
        answer = ACTIONS[args.board_action](library, args)
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        PRINTERS[args.board_action](answer)
    return 0


def _table_format(args: argparse.Namespace) -> str | None:
    """`board export`: the format of a table export (--format/--out), or None for --zip; UsageError
    unless exactly one of the two is asked for."""
    table = wants_export(args)
    if args.zip is not None and table:
        raise UsageError("give either --zip FILE (the original images) or --format/--out (a table), not both")
    if args.zip is None and not table:
        names = "|".join(format_names())
        raise UsageError(f"give --zip FILE (the original images) or --format {names} (a table of the ads)")
    if args.fields is not None and not table:
        raise UsageError("--fields chooses the columns of a table (--format), not of --zip")
    return export_format(args) if table else None


ACTIONS = {
    "create": lambda lib, a: lib.boards.create(a.name, a.description),
    "list": lambda lib, a: {"boards": lib.boards.list()},
    "show": lambda lib, a: {**lib.boards.info(a.name), **lib.boards.ads(a.name, a.k, a.offset).to_dict()},
    "add": lambda lib, a: lib.boards.add(a.name, a.ids),
    "remove": lambda lib, a: lib.boards.remove(a.name, a.ids),
    "delete": lambda lib, a: lib.boards.delete(a.name),
    "like": lambda lib, a: lib.like_board(a.name, a.mode, a.k, a.where).to_dict(),
    "export": lambda lib, a: write_board_zip(lib, lib.boards.resolve(a.name), a.zip),
}


def _print_list(answer: dict) -> None:
    if not answer["boards"]:
        print("no boards yet: `adsearch board create NAME`")
    for board in answer["boards"]:
        about = f"  {board['description']}" if board["description"] else ""
        print(f"{board['count']:>7}  {printable(board['name'])}  (created {board['created_at']})", end="")
        print(printable(about))


def _print_hits(answer: dict) -> None:
    for note in answer.get("notes", []):
        print(f"note: {printable(note)}")
    for hit in answer["hits"]:
        path = hit["paths"][0] if hit["paths"] else hit["id"]
        score = f"{hit['score']:.4f}  " if answer.get("mode") != "browse" else ""
        print(f"{hit['rank']:>3}. {score}{hit['id']}  {printable(path)}")


def _print_show(answer: dict) -> None:
    about = f": {answer['description']}" if answer["description"] else ""
    print(f"{printable(answer['name'])} ({answer['count']} ads, created {answer['created_at']})", end="")
    print(printable(about))
    _print_hits({**answer, "notes": []})


def _print_change(answer: dict) -> None:
    board = printable(answer["board"])
    if "added" in answer:
        print(f"added {len(answer['added'])} to {board} ({len(answer['already'])} already on it)")
    else:
        print(f"removed {len(answer['removed'])} from {board} ({len(answer['not_on_board'])} not on it)")


PRINTERS = {
    "create": lambda b: print(f"created board {printable(b['name'])}"),
    "list": _print_list,
    "show": _print_show,
    "add": _print_change,
    "remove": _print_change,
    "delete": lambda d: print(f"deleted board {printable(d['deleted'])} ({d['ads']} ads kept, off it)"),
    "like": _print_hits,
    "export": lambda z: print(
        f"wrote {printable(z['zip'])}: {z['images']} images and manifest.csv"
        + (f" ({z['missing']} originals could not be read: see the manifest)" if z["missing"] else "")
    ),
}

COMMAND = Command("board", add_parser, run)
