"""The export routes: a search or browse (every matching ad) and a field's value counts, streamed as
CSV, JSON Lines or Parquet (engine.export) with a download file name."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from api.deps import LibraryDep, validate_query
from api.routes.search import Where
from engine.export import format_names, stream_rows, writer_for
from engine.export.rows import MAX_FIELDS, Export, facets_export, parse_fields, results_export
from engine.library import Library
from engine.search.request import Mode, SearchRequest, limits_of

FIELDS_CHARS = 64 * MAX_FIELDS  # the `fields` parameter: at most MAX_FIELDS names
FormatName = Annotated[str, Query(max_length=16, description=f"one of {', '.join(format_names())}")]
Fields = Annotated[
    str | None,
    Query(max_length=FIELDS_CHARS, description="payload fields, comma-separated (default: every scalar one)"),
]


def download(export: Export, format: str, stem: str) -> StreamingResponse:
    """The table streamed as an attachment named `stem` + the format's suffix."""
    writer = writer_for(format)
    chunks = stream_rows(export.rows, export.columns, format)
    headers = {"Content-Disposition": f'attachment; filename="{stem}{writer.suffix}"',
               "X-Export-Rows": export.what}  # fmt: skip
    return StreamingResponse(chunks, media_type=writer.media_type, headers=headers)


def add_export_routes(app: FastAPI, library: Library) -> None:
    """GET /api/export (search or browse results) and GET /api/facets/export (value counts)."""

    @app.get("/api/export", response_class=StreamingResponse)
    def export(
        lib: LibraryDep,
        format: FormatName = "csv",
        q: Annotated[
            str, Query(**limits_of("q"), description="text query; empty: every matching image")
        ] = "",
        mode: Mode = "hybrid",
        weights: Annotated[str | None, Query(**limits_of("weights"))] = None,
        where: Where = (),
        fields: Fields = None,
    ):
        """Every ad the search matches, as a file: a ranked query gives its ranking from the first hit
        down to the engine's hit limit (score, rank in each channel); without `q`, every image matching
        `where` (in id order), streamed whatever their number. Columns: id, paths, ocr_text, and the
        payload `fields`."""
        writer_for(format)  # a bad format is a 422 before anything runs
        try:
            request = SearchRequest(q=q, mode=mode, weights=weights, where=list(where))
        except ValidationError as exc:
            errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        if request.q.strip():
            request = request.model_copy(update={"q": validate_query(request.q, lib.settings)})
        return download(results_export(lib, request, parse_fields(fields)), format, "adsearch-export")

    @app.get("/api/facets/export", response_class=StreamingResponse)
    def facets_download(
        lib: LibraryDep,
        field: Annotated[str, Query(min_length=1, max_length=64, description="a keyword or integer field")],
        format: FormatName = "csv",
        where: Where = (),
        limit: Annotated[int, Query(ge=1, le=200)] = 200,
    ):
        """A field's value counts (as /api/facets) as a file: value, count."""
        writer_for(format)
        return download(facets_export(lib, field, list(where), limit), format, "adsearch-facets")
