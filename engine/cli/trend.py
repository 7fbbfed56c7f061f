"""`adsearch trend`: how many ads per day, week, month or year, for a query or several series."""

from __future__ import annotations

import argparse
import json

from engine.analysis import DEFAULT_TOP, MAX_BUCKETS, MAX_SERIES, PERIODS, TrendRequest
from engine.cli.common import Command, model_options, open_library, settings_of, store_options
from engine.cli.exporting import export_format, export_options, wants_export, write_export
from engine.terminal import printable

SERIES_HELP = (
    f"LABEL=SPEC, repeatable (at most {MAX_SERIES}): compare series on one table, each with its share of "
    "the period's total. SPEC is a query and/or 'where:' clauses separated by ';', e.g. 'Audi=audi', "
    "'A7=\"audi a7\"', 'BMW=where: brand=BMW; year>=2014'"
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "trend",
        help="count the ads per day, week, month or year",
        description="How many ads fall in each period of a date-time field, for a query or several "
        '--series. Filters, "phrases" and -words are counted exactly; a query with free words is '
        "ranked, and its count is the ads among its top N hits (--top), labelled so.",
    )
    p.add_argument("query", nargs="?", default="", help="what to count (none: every ad matching --where)")
    p.add_argument("--where", action="append", default=[], metavar="CLAUSE", help="as in `search`; every "
                   "series takes these")  # fmt: skip
    p.add_argument("--by", default="month", choices=PERIODS, help="the period (default month; weeks are "
                   f"ISO weeks from Monday, in UTC; at most {MAX_BUCKETS} periods)")  # fmt: skip
    p.add_argument("--field", help="the date-time field (default: date when the metadata has one, else "
                   "file_date)")  # fmt: skip
    p.add_argument("--series", action="append", default=[], metavar="LABEL=SPEC", help=SERIES_HELP)
    p.add_argument("--top", type=int, default=DEFAULT_TOP, help="hits of a ranked query whose dates are "
                   f"counted (default {DEFAULT_TOP})")  # fmt: skip
    p.add_argument("--from", dest="start", metavar="DATE", help="first period: the one holding DATE")
    p.add_argument("--to", dest="end", metavar="DATE", help="last period: the one holding DATE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    export_options(p, fields=False)
    store_options(p)
    model_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    request = TrendRequest(
        q=args.query, where=tuple(args.where), by=args.by, field=args.field, series=tuple(args.series),
        top=args.top, start=args.start, end=args.end,
    )  # fmt: skip
    export = export_format(args) if wants_export(args) else None  # checked before the store opens
    with open_library(settings_of(args), need_collection=True, load_models=False) as library:
        if export:
            from engine.export.trend_rows import trend_export

            return write_export(trend_export(library, request), args, export)
        answer = library.trend(request)
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print("\n".join(table(answer)))
    return 0


def table(answer: dict) -> list[str]:
    """The trend as terminal lines: one row per period, each series' count (and share, when several)."""
    labels = [printable(s["label"]) for s in answer["series"]]
    several = len(labels) > 1
    widths = [max(len(label), 7) for label in labels]
    head = f"{'period':<10}" + "".join(f"  {label:>{w}}" + ("   share" if several else "")
                                       for label, w in zip(labels, widths, strict=True))  # fmt: skip
    kinds = ", ".join(f"{label}: {_kind(s)}" for label, s in zip(labels, answer["series"], strict=True))
    lines = [f"{printable(answer['field'])} by {answer['by']} ({kinds})", head]
    for row in answer["buckets"]:
        cells = ""
        for series, width in zip(answer["series"], widths, strict=True):
            cells += f"  {row['counts'][series['label']]:>{width}}"
            if several:
                share = row["shares"][series["label"]]
                cells += "       -" if share is None else f"  {share:>6.1%}"
        lines.append(f"{row['label']:<10}{cells}")
    totals = "".join(f"  {s['total']:>{w}}" + ("        " if several else "")
                     for s, w in zip(answer["series"], widths, strict=True))  # fmt: skip
    lines.append(f"{'total':<10}{totals}".rstrip())
    return lines + [f"note: {printable(note)}" for note in answer["notes"]]


def _kind(series: dict) -> str:
    return f"ads among the top {series['top']}" if series["kind"] == "ranked" else "exact"


COMMAND = Command("trend", add_parser, run)
