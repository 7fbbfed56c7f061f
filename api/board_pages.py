"""The boards pages: every board, one board's grid (with its chart over time and its Download menu),
"More like this board", and the forms that save an ad to a board, take it off, create and delete
boards. Writes carry the API key in the form when one is configured; CrossSiteGuard refuses them
from another site, as every write."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse

from api.deps import NAME_CAP, LibraryDep, SavedName, key_accepted
from api.pages import PageRoute, SearchView, render
from engine.boards import MAX_DESCRIPTION_CHARS
from engine.errors import AdsearchError, NotFound, SearchError
from engine.search.request import ID_PATTERN, limits_of

router = APIRouter(include_in_schema=False, route_class=PageRoute)
BOARD_PAGE = 48  # ads per page of a board's grid
SIMILAR_K = 24
WRONG_KEY = "missing or wrong API key"
FormName = Annotated[str, Form(max_length=NAME_CAP)]
FormKey = Annotated[str | None, Form(max_length=256)]
Offset = Annotated[int, Query(**limits_of("offset"))]


class BoardView(SearchView):
    """A board's page as the search templates read it: its ads are the filter `board=NAME` (so the
    Download menu and the chart ask the API for exactly them); its pager stays on the board's page."""

    def __init__(self, board: str, offset: int):
        super().__init__("", "hybrid", BOARD_PAGE, [f"board={board}"], offset)
        self.board = board

    def url(self, where=None, offset: int = 0, positive=None, negative=None) -> str:
        return board_url(self.board) + (f"?{urlencode({'offset': offset})}" if offset else "")


def board_url(name: str) -> str:
    return f"/boards/{quote(name, safe='')}"


def back_to(request: Request, url: str, status_code: int = 303) -> RedirectResponse:
    """Where a form without JavaScript goes after its write (htmx requests get a fragment instead)."""
    return RedirectResponse(url, status_code=status_code)


def is_htmx(request: Request) -> bool:
    return "hx-request" in request.headers


@router.get("/boards")
def boards_page(request: Request, lib: LibraryDep, error: str | None = None, status_code: int = 200):
    """Every board with its number of ads, and the form that creates one."""
    boards = lib.boards.list() if lib.exists() else []
    return render(request, "boards.html", status_code, boards=boards, error=error,
                  max_description=MAX_DESCRIPTION_CHARS)  # fmt: skip


@router.post("/boards")
def create_board_form(
    request: Request,
    lib: LibraryDep,
    name: FormName,
    description: Annotated[str, Form(max_length=4 * MAX_DESCRIPTION_CHARS)] = "",
    api_key: FormKey = None,
):
    """Create a board, then show it; a refusal shows the boards page with the reason."""
    if not key_accepted(lib.settings, api_key):
        return boards_page(request, lib, WRONG_KEY, 401)
    try:
        board = lib.boards.create(name, description)
    except AdsearchError as exc:
        return boards_page(request, lib, str(exc), 422)
    return back_to(request, board_url(board["name"]))


@router.get("/boards/{name}")
def board_page(request: Request, lib: LibraryDep, name: SavedName, offset: Offset = 0):
    """A board: its description, a page of its ads (newest added first), its chart over time and its
    Download menu; each ad can be taken off."""
    board = lib.boards.info(name)
    view = BoardView(board["name"], offset)
    response = lib.boards.ads(board["name"], BOARD_PAGE, offset)
    return render(request, "board.html", board=board, view=view, response=response, error=None, pager=True,
                  feedback=False, on_board=board["name"])  # fmt: skip


@router.get("/boards/{name}/similar")
def board_similar_page(request: Request, lib: LibraryDep, name: SavedName):
    """More like this board: ads like the board's that are not on it, each with "Save to board"."""
    board = lib.boards.info(name)
    response, error = None, None
    try:
        response = lib.like_board(board["name"], "hybrid", SIMILAR_K)
    except SearchError as exc:  # an empty board, a mode without vectors
        error = str(exc)
    view = SearchView("", "hybrid", SIMILAR_K, [], 0)
    return render(request, "board_similar.html", board=board, view=view, response=response, error=error,
                  pager=False, feedback=False)  # fmt: skip


@router.post("/boards/{name}/delete")
def delete_board_form(request: Request, lib: LibraryDep, name: SavedName, api_key: FormKey = None):
    """Delete a board (its ads stay in the library), then list the boards."""
    if not key_accepted(lib.settings, api_key):
        return boards_page(request, lib, WRONG_KEY, 401)
    lib.boards.delete(name)
    return back_to(request, "/boards")


@router.post("/boards/{name}/remove")
def remove_from_board_form(
    request: Request, lib: LibraryDep, name: SavedName, id: Annotated[str, Form(pattern=ID_PATTERN)],
    api_key: FormKey = None,
):  # fmt: skip
    """Take one ad off a board: htmx replaces its card with a line saying so; without JavaScript the
    board's page again."""
    if not key_accepted(lib.settings, api_key):
        return render(request, "_removed.html", 200 if is_htmx(request) else 401, error=WRONG_KEY)
    removed = lib.boards.remove(name, [id])
    if not is_htmx(request):
        return back_to(request, board_url(removed["board"]))
    return render(request, "_removed.html", board=removed["board"], removed=removed["removed"], error=None)


@router.post("/boards/save")
def save_to_board_form(
    request: Request, lib: LibraryDep, id: Annotated[str, Form(pattern=ID_PATTERN)], board: FormName,
    api_key: FormKey = None,
):  # fmt: skip
    """ "Save to board": put an ad on the board named (created when no board has that name). htmx gets
    the form back saying where the ad went (or why not); without JavaScript, the board's page."""
    saved, error, status = None, None, 200
    if not key_accepted(lib.settings, api_key):
        error, status = WRONG_KEY, 401
    else:
        try:
            saved = save_to_board(lib, board, id)
        except AdsearchError as exc:
            error, status = str(exc), 404 if isinstance(exc, NotFound) else 422
    if saved and not is_htmx(request):
        return back_to(request, board_url(saved["board"]))
    return render(request, "_save.html", 200 if is_htmx(request) else status, image_id=id, saved=saved,
                  error=error, open=True)  # fmt: skip


def save_to_board(lib, name: str, image_id: str) -> dict:
    """Put `image_id` on the board called `name`, creating the board first when there is none (and
    the image exists: a bad id creates nothing)."""
    lib.get(image_id)
    try:
        board = lib.boards.resolve(name)
    except NotFound:
        board = lib.boards.create(name)["name"]
    added = lib.boards.add(board, [image_id])
    return {**added, "board": board, "url": board_url(board)}
