"""Liveness and readiness, answered on the event loop and never refused by the admission limit."""

from __future__ import annotations

from fastapi import FastAPI, Response

from api.deps import (
    LibraryDep,
)
from engine.library import Library


def add_health_routes(app: FastAPI, library: Library) -> None:
    """/health and /health/ready."""

    @app.get("/health")
    async def health(lib: LibraryDep) -> dict:
        """Liveness: answered on the event loop, never refused by the admission limit; also says
        how busy the server is (`saturated`: the next search gets 503) and, after a start, whether
        it is still warming up (`warm`: files read ahead, encoders loaded; searches are answered
        meanwhile, the first ones slower)."""
        warmup = lib.warmup
        status = "warming" if warmup is not None and warmup.warming else "ok"
        warm = warmup.state() if warmup is not None else None
        return {"status": status, "images": lib.store.count(), "warm": warm, **app.state.occupancy.public()}

    @app.get("/health/ready", responses={503: {"description": "every request slot is taken"}})
    async def ready(response: Response) -> dict:
        """Readiness: 200 while the server takes more work, 503 while every request slot is taken
        (an orchestrator then sends traffic elsewhere); answered on the event loop."""
        if app.state.occupancy.saturated:
            response.status_code = 503
            response.headers["Retry-After"] = "1"
        return {"ready": not app.state.occupancy.saturated, **app.state.occupancy.public()}
