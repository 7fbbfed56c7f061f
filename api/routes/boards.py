"""The routes of boards (swipe files): list, create, show, delete; add and remove ads; more like a
board. Writes need the API key (when one is set) like uploads; CrossSiteGuard refuses them from
another site. A bad name is a 422 with the reason, an unknown board a 404 (engine.boards)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ImageId, LibraryDep, Mode, require_key
from api.routes.search import Where, hits_json
from engine.boards import MAX_DESCRIPTION_CHARS, MAX_IDS_PER_CALL, MAX_NAME_CHARS
from engine.errors import NotFound
from engine.library import Library
from engine.search.request import ImageIdText, limits_of

# a little room over the limit, so a name too long by a few characters gets the engine's reason
BoardName = Annotated[str, PathParam(max_length=4 * MAX_NAME_CHARS, description="board name")]
HitCount = Annotated[int, Query(**limits_of("k"))]


class NewBoard(BaseModel):
    """A board to create."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=4 * MAX_NAME_CHARS, description="1-64 letters, digits, spaces, _ or -")
    description: str = Field("", max_length=MAX_DESCRIPTION_CHARS)


class BoardAds(BaseModel):
    """Image ids to put on a board."""

    model_config = ConfigDict(extra="forbid")

    ids: list[ImageIdText] = Field(min_length=1, max_length=MAX_IDS_PER_CALL)


def add_board_routes(app: FastAPI, library: Library) -> None:
    """Boards: list, create, show, delete; their ads; more like a board."""
    writes = [Depends(require_key)]

    @app.get("/api/boards")
    def boards(lib: LibraryDep) -> dict:
        """Every board with its number of ads."""
        return {"boards": lib.boards.list()}

    @app.post("/api/boards", status_code=201, dependencies=writes)
    def create_board(lib: LibraryDep, board: NewBoard) -> dict:
        """Create a board (names are unique whatever their case)."""
        return lib.boards.create(board.name, board.description)

    @app.get("/api/boards/{name}")
    def board(
        lib: LibraryDep,
        name: BoardName,
        k: HitCount = 20,
        offset: Annotated[int, Query(**limits_of("offset"))] = 0,
    ) -> dict:
        """A board and a page of its ads (newest ingested first)."""
        return {**lib.boards.info(name), **hits_json(lib.boards.ads(name, k, offset))}

    @app.delete("/api/boards/{name}", dependencies=writes)
    def delete_board(lib: LibraryDep, name: BoardName) -> dict:
        """Delete a board; its images stay in the collection."""
        return lib.boards.delete(name)

    @app.post("/api/boards/{name}/ads", dependencies=writes)
    def add_ads(lib: LibraryDep, name: BoardName, ads: BoardAds) -> dict:
        """Put stored images on a board; an unknown id is a 422 and nothing is added."""
        return lib.boards.add(name, ads.ids)

    @app.delete("/api/boards/{name}/ads/{image_id}", dependencies=writes)
    def remove_ad(lib: LibraryDep, name: BoardName, image_id: ImageId) -> dict:
        """Take an image off a board (it stays in the collection); 404 if it is not on the board."""
        removed = lib.boards.remove(name, [image_id])
        if not removed["removed"]:
            raise NotFound(f"image {image_id} is not on board {removed['board']!r}")
        return removed

    @app.get("/api/boards/{name}/similar")
    def board_similar(
        lib: LibraryDep, name: BoardName, mode: Mode = "hybrid", k: HitCount = 10, where: Where = ()
    ) -> dict:
        """More like this board: images like its ads (the most recently added ones when it holds many)
        that are not on it; its ads are the examples of a recommend query in every channel of the
        mode, fused as usual."""
        return hits_json(lib.like_board(name, mode, k, list(where)))
