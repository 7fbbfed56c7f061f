"""FastAPI app: JSON routes under /api, pages from api.pages, static files, and the guards in
front of them (api.guards). No search logic here."""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api.access_log import AccessLog, configure_logging
from api.guards import AdmissionLimit, CrossSiteGuard, HostGuard, Occupancy
from api.metrics import AppMetrics
from api.routes.admin import add_admin_routes
from api.routes.boards import add_board_routes
from api.routes.export import add_export_routes
from api.routes.health import add_health_routes
from api.routes.images import add_image_routes
from api.routes.metrics import add_metrics_routes
from api.routes.search import add_search_routes
from api.routes.trend import add_trend_routes
from api.routes.uploads import add_upload_routes
from api.routes.watches import add_watch_routes
from api.settings import ServeSettings, served
from engine.errors import AdsearchError, ImageError, NotFound, SearchError, StoreError
from engine.library import Library
from engine.settings import Settings

STATIC = Path(__file__).parent / "static"
STATUS_OF = [(NotFound, 404), (SearchError, 422), (ImageError, 422), (StoreError, 503), (AdsearchError, 400)]


def json_safe(value: object) -> object:
    """`value` (a validation error's detail) as strict UTF-8 JSON can carry it: NaN and the
    infinities a JSON body may hold (Python's json reads them) become the strings "NaN", "Infinity",
    "-Infinity"; a lone surrogate (`"\\ud800"` in a body) is written as that escape."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def create_app(library: Library | None = None, settings: Settings | None = None) -> FastAPI:
    """The app over `library` (or one opened from `settings`)."""
    library = served(library or Library(settings or ServeSettings()))  # any Library: serve section added
    limits = library.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        library.jobs.start()  # finishes uploads a previous run accepted but did not ingest
        yield
        library.jobs.stop()

    app = FastAPI(
        title="adsearch",
        description="Hybrid OCR + visual search over image ads (Tesseract, PP-OCR, CLIP, Qdrant RRF fusion).",
        version="0.1.0",
        lifespan=lifespan,
        # Refuse oversized bodies while they stream in, before anything is spooled to disk.
        max_body_size=limits.max_upload_files * (limits.max_upload_bytes + 2**16),
        form_limits={"max_fields": 16},  # file count: read_uploads answers 413 with the limit
    )
    app.state.library = library
    app.state.occupancy = occupancy = Occupancy(library.settings.max_concurrent_requests)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Starlette runs the last added outermost: the access log, Host, cross-site, the admission limit.
    app.add_middleware(AdmissionLimit, limit=occupancy.limit, occupancy=occupancy, max_body=app.max_body_size)
    app.add_middleware(CrossSiteGuard)
    app.add_middleware(HostGuard, allowed=library.settings.served_hosts())
    # outermost: every request is timed, logged and counted, those the guards refuse included
    app.state.metrics = metrics = AppMetrics(library, occupancy)
    app.add_middleware(AccessLog, router=app.router, log_queries=library.settings.log_queries,
                       on_answer=metrics.observe_request)  # fmt: skip
    configure_logging(library.settings.log_format)

    @app.exception_handler(AdsearchError)
    async def adsearch_error(request: Request, exc: AdsearchError) -> JSONResponse:
        status = next(code for kind, code in STATUS_OF if isinstance(exc, kind))
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with FastAPI's usual detail, made strict JSON (a body may hold NaN or Infinity)."""
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    add_health_routes(app, library)
    add_search_routes(app, library)
    add_export_routes(app, library)
    add_trend_routes(app, library)
    add_image_routes(app, library)
    add_upload_routes(app, library)
    add_board_routes(app, library)
    add_watch_routes(app, library)
    add_metrics_routes(app, library, metrics)
    add_admin_routes(app, library)

    from api.board_pages import router as board_pages
    from api.pages import router
    from api.watch_pages import router as watch_pages

    app.include_router(router)
    app.include_router(board_pages)
    app.include_router(watch_pages)
    return app
