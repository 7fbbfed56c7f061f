"""`adsearch watch`: saved searches checked against every newly ingested ad (engine.watches)."""

from __future__ import annotations

import argparse
import json

from engine.channels import modes
from engine.cli.common import Command, open_library, say, settings_of, store_options
from engine.errors import UsageError
from engine.terminal import printable
from engine.watches import DEFAULT_TOP, MAX_TOP, Watch, check_watches, is_exact
from engine.watches.check import MATCHING


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "watch", help="saved searches that collect the new ads matching them", description=MATCHING
    )
    actions = p.add_subparsers(dest="watch_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="save a watch", description=MATCHING)
    add.add_argument("name", help="1-64 letters, digits, spaces, '_', '.' or '-'")
    add.add_argument("query", nargs="?", default="", help="what to watch for (none: the filters alone)")
    add.add_argument("--where", action="append", default=[], metavar="CLAUSE", help="as in `search`")
    add.add_argument("--mode", default="hybrid", choices=list(modes()), help="for a ranked watch")
    add.add_argument(
        "--top", type=int, default=DEFAULT_TOP, help=f"ranked: the top N (default {DEFAULT_TOP})"
    )
    actions.add_parser("list", help="the watches and their unseen matches")
    show = actions.add_parser("show", help="one watch's matches, newest first")
    show.add_argument("name")
    show.add_argument("--limit", type=int, default=50, help="at most this many matches (default 50)")
    remove = actions.add_parser("rm", help="delete a watch and its matches (the ads stay)")
    remove.add_argument("name")
    actions.add_parser("check", help="check every watch now against the ads ingested since its last check")
    for action in actions.choices.values():
        action.add_argument("--json", action="store_true", help="machine-readable output")
        store_options(action)
    return p


def run(args: argparse.Namespace) -> int:
    with open_library(settings_of(args), load_models=args.watch_action in ("add", "check")) as library:
        return ACTIONS[args.watch_action](library, args)


def _add(library, args: argparse.Namespace) -> int:
    if not 1 <= args.top <= MAX_TOP:
        raise UsageError(f"--top must be between 1 and {MAX_TOP}, not {args.top}")
    watch = Watch(args.name, args.query.strip(), list(args.where), args.mode, args.top)
    library.payload_fields.parse_where(watch.where)  # a bad clause is refused now, not at every check
    library.watches.add(watch)
    kind = "exact" if is_exact(watch) else f"ranked, top {watch.top}"
    say(f"watch '{watch.name}' saved ({kind}): it collects the ads ingested from now on")
    return 0


def _list(library, args: argparse.Namespace) -> int:
    unseen = library.watches.unseen()
    rows = [{**w.public(), "unseen": unseen.get(w.name, 0)} for w in library.watches.all()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        what = " ".join(filter(None, [repr(row["query"]) if row["query"] else "", *row["where"]]))
        print(f"{printable(row['name'])}: {printable(what)}  ({row['unseen']} unseen)")
    if not rows:
        print('no watches: add one with `adsearch watch add NAME "query"`')
    return 0


def _show(library, args: argparse.Namespace) -> int:
    matches = library.watches.matches(args.name, args.limit, mark_seen=True)
    payloads = library.store.retrieve([m["id"] for m in matches])
    for match in matches:
        match["paths"] = (payloads.get(match["id"]) or {}).get("paths", [])
    if args.json:
        print(json.dumps(matches, indent=2))
        return 0
    for match in matches:
        where = match["paths"][0] if match["paths"] else match["id"]
        print(f"{match['found_at']}  {printable(where)}")
    print(f"{len(matches)} matches")
    return 0


def _remove(library, args: argparse.Namespace) -> int:
    library.watches.remove(args.name)
    say(f"watch '{args.name}' deleted; the ads stay")
    return 0


def _check(library, args: argparse.Namespace) -> int:
    found = check_watches(library)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for name, count in found.items():
        say(f"{name}: {count} new matches")
    return 0


ACTIONS = {"add": _add, "list": _list, "show": _show, "rm": _remove, "check": _check}
COMMAND = Command("watch", add_parser, run)
