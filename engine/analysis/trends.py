"""Trends: how many ads fall in each day, week, month or year of a date-time field, for one query or
several series side by side (share of voice).

A series of filters, "phrases" and -words is counted exactly: one Qdrant count per bucket, its
clauses plus the bucket's range on the (indexed) date field. A series with free query words is a
ranked search: what is counted is the ads among its top N hits, by their date, and the answer says so
(`"kind": "ranked", "top": N`): a ranking orders every ad, so "how many match" has no exact answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from engine.analysis.periods import PERIODS, Bucket, buckets, utc
from engine.analysis.series import Series, series_of
from engine.errors import SearchError
from engine.filters import Clause, split_query, typed_value
from engine.search.fields import CollectionFields
from engine.search.request import MAX_HITS, SearchRequest
from engine.search.results import SearchResponse

DEFAULT_TOP = 100  # hits of a ranked series whose dates are counted
DEFAULT_PERIOD = "month"
PREFERRED_FIELD, FALLBACK_FIELD = "date", "file_date"  # the ad's own date when its metadata has one

Search = Callable[[SearchRequest], SearchResponse]


@dataclass(frozen=True)
class TrendRequest:
    """A trend as the CLI and the API ask for it; `start`/`end` (--from/--to) pick the first and the
    last period, counted whole; without them, the periods of the earliest and latest dated ad."""

    q: str = ""
    where: tuple[str, ...] = ()
    by: str = DEFAULT_PERIOD
    field: str | None = None
    series: tuple[str, ...] = ()
    top: int = DEFAULT_TOP
    start: str | None = None
    end: str | None = None


@dataclass
class _Plan:
    """One series made ready: exact clauses, or the ranked search and the dates of its hits."""

    series: Series
    clauses: list[Clause]
    search: SearchRequest | None = None
    dates: list[datetime] = field(default_factory=list)
    hits: int = 0


def trend(fields: CollectionFields, search: Search, request: TrendRequest) -> dict:
    """Counts per period of `request.field` for each series (engine.analysis.series), with each
    series' share of the period's total across series; SearchError for anything asked wrongly."""
    if request.by not in PERIODS:
        raise SearchError(f"bad period '{request.by}': use one of {', '.join(PERIODS)}")
    if not 1 <= request.top <= MAX_HITS:
        raise SearchError(f"top must be between 1 and {MAX_HITS}, not {request.top}")
    start, end = _bound(request.start, "from"), _bound(request.end, "to")
    if start and end and start > end:
        raise SearchError(f"from ({start.date()}) is after to ({end.date()})")
    date_field = trend_field(fields, request.field)
    plans = [_plan(fields, s, request) for s in series_of(request.q, request.series)]
    periods = buckets(start, end, request.by) if start and end else None  # refused before any search
    for plan in plans:
        if plan.search is not None:
            _rank(fields, search, plan, date_field)
    if periods is None:
        span = _span(fields, plans, date_field, start, end)
        periods = buckets(*span, request.by) if span else []
    counts = {p.series.label: _counts(fields, p, date_field, periods) for p in plans}
    return _answer(date_field, request, plans, periods, counts)


def trend_field(fields: CollectionFields, name: str | None) -> str:
    """The date-time field to count by (default: `date` when the collection has one, else
    `file_date`), its payload index made if missing; SearchError naming the date-time fields."""
    known = fields.types()
    if name is None:
        name = PREFERRED_FIELD if known.get(PREFERRED_FIELD) == "datetime" else FALLBACK_FIELD
    if known.get(name) != "datetime":
        dated = ", ".join(sorted(f for f, kind in known.items() if kind == "datetime"))
        raise SearchError(f"cannot count by '{name}': not a date-time field; date-time fields: {dated}")
    fields.sortable(name)
    return name


def _bound(raw: str | None, name: str) -> datetime | None:
    return typed_value(raw, "datetime", name) if raw else None  # type: ignore[return-value]


def _plan(fields: CollectionFields, series: Series, request: TrendRequest) -> _Plan:
    """The series' filter clauses checked (all of `request.where` plus its own); for a ranked one,
    the search to run."""
    where = [*request.where, *series.where]
    clauses = fields.parse_where(where)
    if series.ranked:
        try:
            ranked = SearchRequest(q=series.query, where=where).deeper(request.top)
        except ValidationError as exc:
            raise SearchError(f"series '{series.label}': {exc.errors()[0]['msg']}") from None
        return _Plan(series, clauses, ranked)
    wording = split_query(series.query).clauses
    if wording:
        fields.text_indexed()
    return _Plan(series, [*clauses, *wording])


def _rank(fields: CollectionFields, search: Search, plan: _Plan, date_field: str) -> None:
    """Run a ranked series' search and keep the date of each hit that has one."""
    hits = search(plan.search).hits  # type: ignore[arg-type]
    payloads = fields.store.retrieve([h.id for h in hits])
    plan.hits = len(hits)
    plan.dates = [d for d in (_date(p.get(date_field)) for p in payloads.values()) if d is not None]


def _date(value: object) -> datetime | None:
    """A stored date-time (RFC 3339 text) in UTC, None when absent or unreadable."""
    try:
        return utc(datetime.fromisoformat(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _span(
    fields: CollectionFields, plans: Sequence[_Plan], date_field: str, start: datetime | None,
    end: datetime | None,
) -> tuple[datetime, datetime] | None:  # fmt: skip
    """The earliest and latest date among every series' ads (the bounds given kept), None if none is
    dated: two ordered reads of one point per exact series, the dates of the ranked ones' hits."""
    dates = [d for p in plans for d in p.dates]
    for plan in (p for p in plans if p.search is None):
        for descending, given in ((False, start), (True, end)):
            if given is None:
                dates += _extreme(fields, plan.clauses, date_field, descending)
    first, last = start or min(dates, default=None), end or max(dates, default=None)
    return (first, last) if first and last and first <= last else None


def _extreme(fields: CollectionFields, clauses: list[Clause], date_field: str, descending: bool) -> list:
    """The earliest (or latest) date of `date_field` among the points matching `clauses`, as a list.
    Only the value matters, not which of the tied points comes first: the store's ordered read of one
    point, not `browse`, which fetches every point tied with it to order them by id."""
    first = fields.store.first_by(clauses, date_field, descending)
    date = _date(first.get(date_field)) if first else None
    return [date] if date is not None else []


def _counts(fields: CollectionFields, plan: _Plan, date_field: str, periods: list[Bucket]) -> list[int]:
    """The series' count in each period: one exact Qdrant count each, or its hits' dates tallied."""
    if plan.search is not None:
        return [sum(1 for d in plan.dates if b.holds(d)) for b in periods]
    store = fields.store
    return [
        store.count(where=[*plan.clauses, Clause(date_field, ">=", b.start), Clause(date_field, "<", b.end)])
        for b in periods
    ]


def _answer(
    date_field: str, request: TrendRequest, plans: list[_Plan], periods: list[Bucket],
    counts: dict[str, list[int]],
) -> dict:  # fmt: skip
    """The trend as JSON: the series (what each counts), the periods with counts and shares."""
    rows = []
    for i, period in enumerate(periods):
        these = {label: n[i] for label, n in counts.items()}
        total = sum(these.values())
        shares = {label: (round(n / total, 4) if total else None) for label, n in these.items()}
        rows.append({"start": period.start.isoformat(), "end": period.end.isoformat(), "label": period.label,
                     "counts": these, "shares": shares})  # fmt: skip
    series, notes = [], []
    for plan in plans:
        label = plan.series.label
        entry = {"label": label, "kind": "ranked" if plan.search else "exact", "query": plan.series.query,
                 "where": [*request.where, *plan.series.where], "total": sum(counts[label])}  # fmt: skip
        if plan.search is not None:
            entry |= {"top": request.top, "hits": plan.hits, "undated": plan.hits - len(plan.dates)}
            notes.append(f"{label}: ads among the top {request.top} hits of the ranked search, not every "
                         "matching ad")  # fmt: skip
        series.append(entry)
    if not periods:
        notes.append(f"no matching ad has a {date_field} in the span asked")
    first, last = (rows[0]["start"], rows[-1]["end"]) if rows else (None, None)
    return {"field": date_field, "by": request.by, "from": first, "to": last, "series": series,
            "buckets": rows, "notes": notes}  # fmt: skip
