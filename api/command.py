"""`adsearch serve`: the HTTP face registers its command with the engine's CLI (entry point group
`adsearch.commands` in pyproject.toml), so the engine never imports api/."""

from __future__ import annotations

import argparse

from api.app import create_app
from api.guards import UVICORN_LIMITS
from api.settings import ServeSection, ServeSettings
from engine.cli import (
    Command,
    model_options,
    ocr_options,
    open_library,
    setting_flags,
    settings_of,
    store_options,
)
from engine.terminal import printable


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="start the HTTP API and web UI",
        description="Serve the JSON API (/api, docs at /docs) and the web pages on one port. Binds "
        "127.0.0.1 unless told otherwise; set ADSEARCH_API_KEY to require a key for uploads and deletes.",
    )
    setting_flags(p, ServeSection)  # --host, --port, --allowed-hosts, --max-concurrent-requests, --log-*
    store_options(p)
    model_options(p)
    ocr_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    import uvicorn

    settings = settings_of(args, ServeSettings)
    library = open_library(settings)
    where = printable(f"http://{settings.host}:{settings.port}/")
    library.start_warming()  # files read ahead, encoders loaded, one search: /health says "warming"
    print(f"adsearch: serving {library.store.count()} images at {where}", flush=True)
    try:  # uvicorn's own limits on idle connections and request heads (api.guards bounds the bodies)
        uvicorn.run(create_app(library), host=settings.host, port=settings.port, log_level="warning",
                    **UVICORN_LIMITS)  # fmt: skip
    finally:
        library.close()
    return 0


SERVE = Command("serve", add_parser, run, after="search")
