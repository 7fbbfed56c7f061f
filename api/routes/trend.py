"""The trend routes: counts per day, week, month or year of a date-time field (engine.analysis), as
JSON and as a file (CSV, JSON Lines, Parquet). Both take the same parameters, declared once in
`trend_request`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from api.deps import LibraryDep, validate_query
from api.routes.export import FormatName, download
from api.routes.search import Where
from engine.analysis import DEFAULT_TOP, MAX_SERIES, PERIODS, TrendRequest
from engine.analysis.series import MAX_SERIES_CHARS
from engine.export import writer_for
from engine.export.trend_rows import trend_export
from engine.library import Library
from engine.search.request import MAX_HITS, MAX_SORT_CHARS, limits_of

Period = Literal[PERIODS]
MAX_DATE_CHARS = 64
SeriesText = Annotated[str, Field(max_length=MAX_SERIES_CHARS)]


def trend_request(
    lib: LibraryDep,
    q: Annotated[str, Query(**limits_of("q"), description="what to count; empty: every filtered ad")] = "",
    where: Where = (),
    by: Period = "month",
    field: Annotated[
        str | None, Query(min_length=1, max_length=MAX_SORT_CHARS, description="a date-time field")
    ] = None,
    series: Annotated[
        tuple[SeriesText, ...],
        Query(max_length=MAX_SERIES, description="LABEL=QUERY or LABEL=where: CLAUSE; CLAUSE (repeat)"),
    ] = (),
    top: Annotated[int, Query(ge=1, le=MAX_HITS, description="hits of a ranked query counted")] = DEFAULT_TOP,
    start: Annotated[
        str | None, Query(alias="from", max_length=MAX_DATE_CHARS, description="first period's date")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=MAX_DATE_CHARS, description="last period's date")
    ] = None,
) -> TrendRequest:
    """The trend the query parameters ask for (the parameters of /api/trend and /api/trend/export)."""
    q = validate_query(q, lib.settings) if q.strip() else ""
    return TrendRequest(
        q=q, where=tuple(where), by=by, field=field, series=tuple(series), top=top, start=start, end=end
    )


TrendParams = Annotated[TrendRequest, Depends(trend_request)]


def add_trend_routes(app: FastAPI, library: Library) -> None:
    """GET /api/trend and GET /api/trend/export."""

    @app.get("/api/trend")
    def trend(lib: LibraryDep, request: TrendParams) -> dict:
        """How many ads fall in each period of `field` (default `date` when the metadata has one, else
        `file_date`), per series with its share of the period's total. Filters, "phrases" and -words
        count exactly (`kind: exact`); a query with free words counts the ads among its `top` hits
        (`kind: ranked`)."""
        return lib.trend(request)

    @app.get("/api/trend/export", response_class=StreamingResponse)
    def trend_download(lib: LibraryDep, request: TrendParams, format: FormatName = "csv"):
        """The trend /api/trend gives (same parameters) as a file, one row per period: start, end,
        period, and per series `<label>` (its count) and `<label>_share` (a name taken already, e.g. a
        series labelled `end`, gets `_2`...: engine.export.trend_rows)."""
        writer_for(format)  # a bad format is a 422 before the trend is counted
        return download(trend_export(lib, request), format, "adsearch-trend")
