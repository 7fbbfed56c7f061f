"""The watches pages: every watch with its unseen matches and its feed, and one watch's matches."""

from __future__ import annotations

from pathlib import PurePosixPath

from fastapi import APIRouter, Request

from api.deps import LibraryDep, SavedName
from api.pages import PageRoute, render
from api.routes.watches import watch_json
from engine.watches.check import MATCHING
from engine.watches.feed import describe

router = APIRouter(include_in_schema=False, route_class=PageRoute)
PAGE_MATCHES = 60


@router.get("/watches")
def watches_page(request: Request, lib: LibraryDep):
    """Each watch: what it matches, how many matches are unseen, its Atom feed."""
    unseen = lib.watches.unseen()
    rows = [{**watch_json(w, unseen.get(w.name, 0)), "describe": describe(w)} for w in lib.watches.all()]
    return render(request, "watches.html", watches=rows, matching=MATCHING)


@router.get("/watches/{name}")
def watch_page(request: Request, lib: LibraryDep, name: SavedName):
    """One watch's matches, newest first, as a grid (viewing them marks them seen)."""
    watch = lib.watches.get(name)
    matches = lib.watches.matches(name, PAGE_MATCHES, mark_seen=True)
    payloads = lib.store.retrieve([m["id"] for m in matches])
    for match in matches:
        paths = (payloads.get(match["id"]) or {}).get("paths") or [match["id"]]
        match["name"] = PurePosixPath(paths[0]).name
    return render(request, "watch.html", watch=watch_json(watch), describe=describe(watch), matches=matches)
