"""/metrics: the Prometheus text format (api/metrics.py). Readable without the API key only from a
loopback address; from anywhere else the key is required (X-API-Key, as the write routes take it,
or `Authorization: Bearer KEY`, which Prometheus sends with `authorization: credentials_file`), and
with no key configured it is not readable from elsewhere at all. Never refused by the admission
limit: it matters most when the server is full. Not in the OpenAPI schema (it is not JSON)."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request, Response

from api.deps import key_accepted
from api.metrics import CONTENT_TYPE_LATEST, AppMetrics, is_loopback
from engine.library import Library


def provided_key(request: Request) -> str | None:
    """The API key the request carries: X-API-Key, else a Bearer Authorization."""
    key = request.headers.get("x-api-key")
    if key is None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        key = credentials.strip() if scheme.lower() == "bearer" else None
    return key


def add_metrics_routes(app: FastAPI, library: Library, metrics: AppMetrics) -> None:
    """GET /metrics."""

    @app.get("/metrics", include_in_schema=False)
    def read_metrics(request: Request) -> Response:
        """Every metric, for Prometheus to scrape (answered in a worker thread: the job list and the
        store's count may wait on a lock)."""
        if not is_loopback(request.client.host if request.client else None):
            if not library.settings.api_key:
                raise HTTPException(403, "metrics are readable from loopback only, unless an API key is "
                                         "set (ADSEARCH_API_KEY) and sent")  # fmt: skip
            if not key_accepted(library.settings, provided_key(request)):
                detail = "missing or wrong API key (X-API-Key header, or Authorization: Bearer)"
                raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})
        return Response(metrics.exposition(), headers={"content-type": CONTENT_TYPE_LATEST,
                                                       "cache-control": "no-store"})  # fmt: skip
