"""The routes of boards (swipe files): list, create, show, delete; add and remove ads; more like a
board; a board's ads as a file (CSV, JSON Lines, Parquet). Writes need the API key (when one is set)
like uploads; CrossSiteGuard refuses them from another site; reads (the export too) need no key. A
bad name is a 422 with the reason, an unknown board a 404 (engine.boards)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import NAME_CAP, ImageId, LibraryDep, Mode, SavedName, require_key
from api.routes.export import Fields, FormatName, download
from api.routes.search import Where, hits_json
from engine.boards import MAX_DESCRIPTION_CHARS, MAX_IDS_PER_CALL
from engine.errors import NotFound
from engine.export import writer_for
from engine.export.rows import board_export, parse_fields
from engine.library import Library
from engine.schema import SAVED_NAME_RULE
from engine.search.request import ImageIdText, limits_of

HitCount = Annotated[int, Query(**limits_of("k"))]


class NewBoard(BaseModel):
    """A board to create."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=NAME_CAP, description=SAVED_NAME_RULE)
    description: str = Field("", max_length=MAX_DESCRIPTION_CHARS)


class BoardAds(BaseModel):
    """Image ids to put on a board."""

    model_config = ConfigDict(extra="forbid")

    ids: list[ImageIdText] = Field(min_length=1, max_length=MAX_IDS_PER_CALL)


def add_board_routes(app: FastAPI, library: Library) -> None:
    """Boards: list, create, show, delete; their ads; more like a board; a board as a file."""
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
        name: SavedName,
        k: HitCount = 20,
        offset: Annotated[int, Query(**limits_of("offset"))] = 0,
    ) -> dict:
        """A board and a page of its ads (newest ingested first)."""
        return {**lib.boards.info(name), **hits_json(lib.boards.ads(name, k, offset))}

    @app.delete("/api/boards/{name}", dependencies=writes)
    def delete_board(lib: LibraryDep, name: SavedName) -> dict:
        """Delete a board; its images stay in the collection."""
        return lib.boards.delete(name)

    @app.post("/api/boards/{name}/ads", dependencies=writes)
    def add_ads(lib: LibraryDep, name: SavedName, ads: BoardAds) -> dict:
        """Put stored images on a board; an unknown id is a 422 and nothing is added."""
        return lib.boards.add(name, ads.ids)

    @app.delete("/api/boards/{name}/ads/{image_id}", dependencies=writes)
    def remove_ad(lib: LibraryDep, name: SavedName, image_id: ImageId) -> dict:
        """Take an image off a board (it stays in the collection); 404 if it is not on the board."""
        removed = lib.boards.remove(name, [image_id])
        if not removed["removed"]:
            raise NotFound(f"image {image_id} is not on board {removed['board']!r}")
        return removed

    @app.get("/api/boards/{name}/similar")
    def board_similar(
        lib: LibraryDep, name: SavedName, mode: Mode = "hybrid", k: HitCount = 10, where: Where = ()
    ) -> dict:
        """More like this board: images like its ads (the most recently added ones when it holds many)
        that are not on it; its ads are the examples of a recommend query in every channel of the
        mode, fused as usual."""
        return hits_json(lib.like_board(name, mode, k, list(where)))

    @app.get("/api/boards/{name}/export", response_class=StreamingResponse)
    def board_download(lib: LibraryDep, name: SavedName, format: FormatName = "csv", fields: Fields = None):
        """Every ad on the board as a file: id, added_order (its addition number on the board: sort by
        it for the order they were added), paths, ocr_text and the payload `fields` (default: every
        scalar one), in id order, streamed. An unknown board is a 404, a bad format or field a 422."""
        writer_for(format)  # a bad format is a 422 before anything runs
        return download(board_export(lib, name, parse_fields(fields)), format, "adsearch-board")
