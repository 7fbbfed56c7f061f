"""The watch routes: saved searches, their matches, and an Atom feed per watch."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import NAME_CAP, LibraryDep, SavedName, require_key
from engine.library import Library
from engine.schema import SAVED_NAME_RULE
from engine.search.request import ClauseText, Mode, limits_of
from engine.watches import DEFAULT_TOP, MAX_TOP, Watch, is_exact
from engine.watches.feed import atom_feed

FEED_ENTRIES = 100


class WatchBody(BaseModel):
    """A watch to save: a query and/or filter clauses (as in a search)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=NAME_CAP, description=SAVED_NAME_RULE)
    q: str = Field("", **limits_of("q"))
    where: list[ClauseText] = Field(default_factory=list, **limits_of("where"))
    mode: Mode = "hybrid"
    top: int = Field(DEFAULT_TOP, ge=1, le=MAX_TOP)


def watch_json(watch: Watch, unseen: int | None = None) -> dict:
    """A watch as the API shows it: its kind, its feed URL, and unseen matches when counted."""
    data = {**watch.public(), "kind": "exact" if is_exact(watch) else "ranked"}
    data["feed_url"] = f"/watches/{quote(watch.name)}/feed.atom"
    return data if unseen is None else {**data, "unseen": unseen}


def add_watch_routes(app: FastAPI, library: Library) -> None:
    """Watches: list, save, show with matches, delete; the Atom feed."""

    @app.get("/api/watches")
    def list_watches(lib: LibraryDep) -> dict:
        """Every watch with its count of unseen matches."""
        unseen = lib.watches.unseen()
        return {"watches": [watch_json(w, unseen.get(w.name, 0)) for w in lib.watches.all()]}

    @app.post("/api/watches", status_code=201, dependencies=[Depends(require_key)])
    def add_watch(lib: LibraryDep, body: WatchBody) -> dict:
        """Save a watch; it collects the ads ingested from now on (exact: every new ad matching the
        filters and phrases; ranked: a new ad that enters the top `top` for the query)."""
        watch = Watch(body.name, body.q.strip(), list(body.where), body.mode, body.top)
        lib.payload_fields.parse_where(watch.where)
        return watch_json(lib.watches.add(watch))

    @app.get("/api/watches/{name}")
    def show_watch(
        lib: LibraryDep, name: SavedName, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> dict:
        """One watch and its matches, newest first (reading them marks them seen)."""
        watch = lib.watches.get(name)
        return {**watch_json(watch), "matches": lib.watches.matches(name, limit, mark_seen=True)}

    @app.delete("/api/watches/{name}", dependencies=[Depends(require_key)])
    def delete_watch(lib: LibraryDep, name: SavedName) -> dict:
        """Delete a watch and its matches (the ads stay)."""
        lib.watches.remove(name)
        return {"name": name, "deleted": True}

    @app.get("/watches/{name}/feed.atom", response_class=Response)
    def watch_feed(lib: LibraryDep, name: SavedName, request: Request) -> Response:
        """The watch's matches as an Atom feed (RFC 4287) for any feed reader."""
        watch = lib.watches.get(name)
        matches = lib.watches.matches(name, FEED_ENTRIES)
        payloads = lib.store.retrieve([m["id"] for m in matches])
        body = atom_feed(watch, matches, payloads, str(request.base_url))
        return Response(body, media_type="application/atom+xml")
