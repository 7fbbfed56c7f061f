"""A trend (engine.analysis, `Library.trend`) as an export table: one row per period, each series'
count and share side by side, ready for a spreadsheet or pandas."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from engine.export.base import Column
from engine.export.rows import Export

if TYPE_CHECKING:
    from engine.analysis import TrendRequest
    from engine.library import Library

PERIOD_COLUMNS = ("start", "end", "period")  # every row: the period's bounds and its label
SHARE_SUFFIX = "_share"


def trend_export(library: Library, request: TrendRequest) -> Export:
    """The trend `request` asks for (`library.trend`, run now: every bad parameter is raised here,
    before the first row) as a table, one row per period, empty periods included:

    - `start`, `end`: the period's bounds (datetimes in UTC; `end` is the next period's start),
      `period`: its label (`2024-03`, `2024-W05`, ...);
    - per series, in the order given: `<label>`, its count in the period, and `<label>_share`, its
      share of the period's total across the series (empty when no series has an ad then).

    Column names (decision): a label is used as it is (labels are unique, 1-40 printable characters;
    a CSV header cell that reads as a formula is neutralised like any cell). A name that is taken
    already gets `_2`, `_3`... appended, the first that is free: a label equal to `start`, `end` or
    `period` (a series labelled `end` has the columns `end_2` and `end_share`), or a share column
    whose name is another series' label (series `A` and `A_share`: `A`, `A_share_2` for A's share,
    `A_share`, `A_share_share`). Every series' count column keeps its label when it can, and the
    names are unique and the same for the same labels. `series_columns` gives the mapping."""
    answer = library.trend(request)
    names = series_columns([s["label"] for s in answer["series"]])
    columns = [Column("start", "datetime"), Column("end", "datetime"), Column("period", "string")]
    for count, share in names.values():
        columns += [Column(count, "integer"), Column(share, "float")]
    what = f"{len(answer['buckets'])} periods of {answer['field']} by {answer['by']}"
    if any(s["kind"] == "ranked" for s in answer["series"]):
        what += f"; a ranked series counts its ads among the top {request.top} hits"
    return Export(columns, _trend_rows(answer["buckets"], names), what)


def series_columns(labels: Sequence[str]) -> dict[str, tuple[str, str]]:
    """label -> (its count column, its share column), unique among themselves and PERIOD_COLUMNS
    (the rule is trend_export's)."""
    claimed = set(labels)  # each label is first its own count column's name
    taken = set(PERIOD_COLUMNS)
    names = {}
    for label in labels:
        count = label if label not in taken else _free(label, taken | claimed)
        taken.add(count)
        share = _free(label + SHARE_SUFFIX, taken | claimed)
        taken.add(share)
        names[label] = (count, share)
    return names


def _free(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`... the first not in `taken`."""
    if name not in taken:
        return name
    number = 2
    while f"{name}_{number}" in taken:
        number += 1
    return f"{name}_{number}"


def _trend_rows(buckets: list[dict], names: dict[str, tuple[str, str]]) -> Iterator[dict]:
    for bucket in buckets:
        row = {"start": bucket["start"], "end": bucket["end"], "period": bucket["label"]}
        for label, (count, share) in names.items():
            row[count] = bucket["counts"][label]
            row[share] = bucket["shares"][label]
        yield row
