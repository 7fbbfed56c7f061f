"""The series a trend compares: `LABEL=SPEC`, SPEC being a query and/or `where:` clauses.

    Audi=audi                          ranked: the ads among the top N for the query "audi"
    Audi A7="audi a7"                  exact: every ad whose OCR text has the phrase
    BMW=where: brand=BMW               exact: every ad with brand BMW
    Cars=-kids where: category=cars; budget>=10000

The label is everything before the first `=`; `where:` starts the clauses, separated by `;` (each one
as `--where` takes it). A series with no query words left once phrases and -words are taken out is
counted exactly; one with query words is a ranked search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import SearchError
from engine.filters import split_query
from engine.search.request import MAX_QUERY_CHARS

MAX_SERIES = 8  # series one trend compares
MAX_LABEL_CHARS = 40
MAX_SERIES_CHARS = MAX_QUERY_CHARS  # one LABEL=SPEC as given
WHERE_MARK = "where:"
_WHERE = re.compile(r"(?:^|\s)where:", re.IGNORECASE)
_QUOTED = re.compile(r'"[^"]*"')  # a phrase, as engine.filters.split_query reads one
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Series:
    """One series: its label, the query (phrases and -words included) and its own filter clauses."""

    label: str
    query: str = ""
    where: tuple[str, ...] = ()

    @property
    def ranked(self) -> bool:
        """Does it rank (query words outside "phrases") rather than count exactly (filters, phrases,
        -words)?"""
        return bool(split_query(_QUOTED.sub(" ", self.query)).text.strip())


def parse_series(text: str) -> Series:
    """'BMW=where: brand=BMW' -> Series('BMW', '', ('brand=BMW',)); SearchError saying what is wrong."""
    if len(text) > MAX_SERIES_CHARS:
        raise SearchError(f"a series is at most {MAX_SERIES_CHARS} characters")
    label, sep, spec = text.partition("=")
    label = label.strip()
    if not sep or not label:
        raise SearchError(f"bad series '{text}': write LABEL=QUERY or LABEL=where: CLAUSE; CLAUSE")
    check_label(label)
    found = _WHERE.search(spec)
    query, clauses = (spec[: found.start()], spec[found.end() :]) if found else (spec, None)
    if not query.strip() and clauses is None:
        raise SearchError(f"bad series '{text}': give a query and/or '{WHERE_MARK}' clauses after the label")
    where = tuple(c.strip() for c in (clauses or "").split(";") if c.strip())
    return Series(label, " ".join(query.split()), where)


def check_label(label: str) -> None:
    """A label is 1..MAX_LABEL_CHARS characters without control characters."""
    if not 1 <= len(label) <= MAX_LABEL_CHARS or _CONTROL.search(label):
        raise SearchError(f"bad series label '{label[:MAX_LABEL_CHARS]}': 1 to {MAX_LABEL_CHARS} printable "
                          "characters")  # fmt: skip


def series_of(query: str, specs: list[str] | tuple[str, ...]) -> list[Series]:
    """The series to count: the `--series` given (then `query` must be empty), else one series for
    `query` (labelled by it, or 'all'). SearchError for too many series, a label given twice or a
    query beside series."""
    if not specs:
        return [Series(" ".join(query.split())[:MAX_LABEL_CHARS] or "all", query)]
    if query.strip():
        raise SearchError("give either a query or --series, not both (a query is one series)")
    if len(specs) > MAX_SERIES:
        raise SearchError(f"at most {MAX_SERIES} series")
    series = [parse_series(s) for s in specs]
    labels = [s.label for s in series]
    repeated = next((label for label in labels if labels.count(label) > 1), None)
    if repeated is not None:
        raise SearchError(f"series label '{repeated}' is given twice")
    return series
