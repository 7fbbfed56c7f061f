"""Calendar periods a trend counts in: day, ISO week (Monday start), month, year, all in UTC; the
buckets between two dates, at most MAX_BUCKETS of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.errors import SearchError

PERIODS = ("day", "week", "month", "year")
MAX_BUCKETS = 400  # a trend table or chart beyond this is unreadable (and costs one count per bucket)


@dataclass(frozen=True)
class Bucket:
    """One period: from `start` (included) to `end` (excluded), in UTC."""

    start: datetime
    end: datetime
    label: str

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def utc(moment: datetime) -> datetime:
    """`moment` in UTC (a naive one is taken as UTC, as the filter language does)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def period_start(moment: datetime, by: str) -> datetime:
    """The start of the period of `moment` (UTC midnight; weeks start on Monday)."""
    day = utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    if by == "day":
        return day
    if by == "week":
        return day - timedelta(days=day.weekday())
    if by == "month":
        return day.replace(day=1)
    if by == "year":
        return day.replace(month=1, day=1)
    raise SearchError(f"bad period '{by}': use one of {', '.join(PERIODS)}")


def next_start(start: datetime, by: str) -> datetime:
    """The start of the period after the one starting at `start` (the end of time after year 9999)."""
    try:
        return _after(start, by)
    except (OverflowError, ValueError):
        return datetime.max.replace(tzinfo=UTC)


def _after(start: datetime, by: str) -> datetime:
    if by == "day":
        return start + timedelta(days=1)
    if by == "week":
        return start + timedelta(days=7)
    if by == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.replace(year=start.year + 1)


def period_label(start: datetime, by: str) -> str:
    """How a period is written: 2024-03-05, 2024-W10, 2024-03, 2024."""
    if by == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.strftime({"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[by])


def buckets(first: datetime, last: datetime, by: str) -> list[Bucket]:
    """Every period from the one holding `first` to the one holding `last`, whole; SearchError when
    they are more than MAX_BUCKETS, suggesting a coarser period."""
    out: list[Bucket] = []
    for start in _starts(period_start(first, by), period_start(last, by), by):
        if len(out) == MAX_BUCKETS:
            coarser = ", ".join(PERIODS[PERIODS.index(by) + 1 :]) or "a shorter span"
            raise SearchError(
                f"more than {MAX_BUCKETS} {by} periods from {first.date()} to {last.date()}: use a coarser "
                f"--by ({coarser}) or a narrower --from/--to"
            )
        end = next_start(start, by)
        out.append(Bucket(start, end, period_label(start, by)))
    return out


def _starts(start: datetime, last: datetime, by: str) -> Iterator[datetime]:
    while start <= last:
        yield start
        start = next_start(start, by)
