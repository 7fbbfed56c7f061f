"""Server-rendered pages (Jinja2 + HTMX): search, one image with its OCR boxes, uploads with their
progress, library statistics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import (
    ID_PATTERN,
    ImageId,
    JobId,
    LibraryDep,
    Mode,
    job_json,
    key_accepted,
    ocr_of,
    read_upload,
    read_uploads,
)
from engine.channels import all_channels, text_modes
from engine.errors import AdsearchError, NotFound
from engine.export import format_names
from engine.filters import BUILTIN_FIELDS, FIELD_ALIASES
from engine.media.originals import query_image
from engine.schema import MEMBERSHIP_FIELDS
from engine.search import SearchResponse, term_matches
from engine.search.request import MAX_CLAUSES, MAX_EXAMPLES, SearchRequest, limits_of

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
_WORD = re.compile(r"[A-Za-z0-9]+")
READER_LABELS = {"tesseract": "Tesseract", "ppocr": "PP-OCR"}
PAGE_K = 24  # results per page unless the URL says otherwise
_ID = re.compile(ID_PATTERN)
BROWSE_FEEDBACK_NOTE = "'More like this' and 'Not this' need a text query: ignored while browsing"
FACET_FIELDS = ("format", "folder")  # built-in fields always offered, then keyword metadata fields
MAX_FACET_FIELDS = 6
FACET_VALUES = 10


def highlight(text: str, terms: list[str]) -> Markup:
    """Escape `text` and wrap the words matching any query term in <mark>. Words are found in the
    raw text and each piece is escaped on its own: a term never matches inside an entity (`lt` in
    `&lt;`, `39` in `&#39;`)."""
    terms = [t for t in terms if len(t) > 1]
    if not terms:
        return escape(text)
    pieces, end = [], 0
    for match in _WORD.finditer(text):
        word = match.group(0)
        pieces.append(escape(text[end : match.start()]))
        hit = any(term_matches(t, word.lower()) for t in terms)
        pieces.append(Markup("<mark>{}</mark>").format(word) if hit else escape(word))
        end = match.end()
    pieces.append(escape(text[end:]))
    return Markup("").join(pieces)


def confidence_class(confidence: float) -> str:
    return "high" if confidence >= 85 else "mid" if confidence >= 65 else "low"


def reader_label(reader: str) -> str:
    """How a reader is named on the pages."""
    return READER_LABELS.get(reader, reader)


def channel_label(name: str) -> str:
    """How a channel is named on the pages (its declared label)."""
    return next((c.label for c in all_channels() if c.name == name), name)


def swap_link(url: str, label: object, class_: str = "", rel: str = "", aria_label: str = "") -> Markup:
    """A link to another state of the search page that HTMX swaps in place (#view), pushing the URL;
    without JavaScript it is a plain link to the same URL."""
    attrs = {"href": url, "hx-get": url, "hx-target": "#view", "hx-select": "#view",
             "hx-swap": "outerHTML show:window:top", "hx-push-url": "true", "class": class_, "rel": rel,
             "aria-label": aria_label}  # fmt: skip
    rendered = " ".join(f'{name}="{escape(value)}"' for name, value in attrs.items() if value)
    return Markup(f"<a {rendered}>{escape(label)}</a>")


templates.env.filters["highlight"] = highlight
templates.env.globals["swap_link"] = swap_link
templates.env.filters["reader_label"] = reader_label
templates.env.filters["confidence_class"] = confidence_class
templates.env.filters["channel_label"] = channel_label
templates.env.globals["modes"] = text_modes()  # the search form; copies are found by image
templates.env.globals["export_formats"] = format_names()  # the Download menu (_download.html)


def render(request: Request, name: str, status_code: int = 200, **context):
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def key_needed(request: Request) -> bool:
    """Whether the page's write forms must carry the API key (one is configured)."""
    return bool(request.app.state.library.settings.api_key)


def saved_boards(request: Request) -> list[str]:
    """The names of the collection's boards, for the "Save to board" forms (none before any ingest)."""
    try:
        return sorted(request.app.state.library.boards.definitions(), key=str.casefold)
    except AdsearchError:
        return []


templates.env.globals["key_needed"] = key_needed
templates.env.globals["saved_boards"] = saved_boards


class PageRoute(APIRoute):
    """A page's route: what the engine cannot find (NotFound) is the error page with a 404, where the
    JSON routes answer {"detail": ...}."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def page_handler(request: Request):
            try:
                return await handler(request)
            except NotFound as exc:
                return render(request, "error.html", message=str(exc), status_code=404)

        return page_handler


router = APIRouter(include_in_schema=False, route_class=PageRoute)


class SearchView:
    """What the search page shows besides the hits: the URL state (query, mode, filters, diversity,
    feedback examples, page) and links that change one part of it, the facet counts, the pager."""

    def __init__(
        self, q: str, mode: str, k: int, where: list[str], offset: int, diverse: bool = False,
        positive: list[str] | None = None, negative: list[str] | None = None,
    ):  # fmt: skip
        self.q, self.mode, self.k, self.where, self.offset = q, mode, k, where, offset
        self.diverse, self.positive, self.negative = diverse, positive or [], negative or []
        self.names: dict[str, str] = {}  # example id -> short name for its chip

    def url(
        self, where: list[str] | None = None, offset: int = 0,
        positive: list[str] | None = None, negative: list[str] | None = None,
    ) -> str:  # fmt: skip
        """The page's URL with `where`, `positive`, `negative` (default: the current ones) and `offset`."""
        params: list[tuple[str, str | int]] = [("q", self.q), ("mode", self.mode)]
        params += [("where", w) for w in (self.where if where is None else where)]
        if self.diverse:
            params.append(("diverse", 1))
        params += [("positive", i) for i in (self.positive if positive is None else positive)]
        params += [("negative", i) for i in (self.negative if negative is None else negative)]
        if self.k != PAGE_K:
            params.append(("k", self.k))
        if offset:
            params.append(("offset", offset))
        return "/?" + urlencode(params)

    def add(self, field: str, value: object) -> str:
        """The URL with `field=value` added to the filters (back to the first page)."""
        return self.url([*self.where, clause(field, value)])

    def without(self, index: int) -> str:
        """The URL without the filter at `index` (back to the first page)."""
        return self.url([w for i, w in enumerate(self.where) if i != index])

    def active(self, field: str, value: object) -> bool:
        return clause(field, value) in self.where

    @property
    def examples(self) -> bool:
        return bool(self.positive or self.negative)

    def can_like(self) -> bool:
        return len(self.positive) < MAX_EXAMPLES

    def can_unlike(self) -> bool:
        return len(self.negative) < MAX_EXAMPLES

    def like(self, image_id: str) -> str:
        """The URL with `image_id` added to the "more like this" examples (and out of "not this")."""
        return self.url(positive=[*self.positive, image_id], negative=_without(self.negative, image_id))

    def unlike(self, image_id: str) -> str:
        """The URL with `image_id` added to the "not this" examples (and out of "more like this")."""
        return self.url(positive=_without(self.positive, image_id), negative=[*self.negative, image_id])

    def without_example(self, image_id: str) -> str:
        """The URL without `image_id` among the examples (back to the first page)."""
        positive, negative = _without(self.positive, image_id), _without(self.negative, image_id)
        return self.url(positive=positive, negative=negative)

    def name(self, image_id: str) -> str:
        return self.names.get(image_id) or image_id[:8]


def _without(ids: list[str], image_id: str) -> list[str]:
    return [i for i in ids if i != image_id]


def example_ids(ids: list[str] | None, what: str) -> list[str]:
    """Image ids from the URL, in order without repeats; ValueError naming a bad one or too many."""
    unique = list(dict.fromkeys(i.strip() for i in ids or [] if i.strip()))
    for image_id in unique:
        if not _ID.match(image_id):
            raise ValueError(f"not an image id in {what}: {image_id[:60]}")
    if len(unique) > MAX_EXAMPLES:
        raise ValueError(f"at most {MAX_EXAMPLES} {what} examples")
    return unique


def example_names(lib, ids: list[str]) -> dict[str, str]:
    """A short name (the file name) of each example image that exists."""
    names = {}
    for image_id in ids:
        try:
            paths = lib.get(image_id).get("paths") or []
        except AdsearchError:
            continue
        if paths:
            names[image_id] = Path(paths[0]).name
    return names


def clause(field: str, value: object) -> str:
    """`field=value` as the filter language reads it back (quoted when spaces at either end or quotes
    would otherwise be lost)."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if text != text.strip() or text[:1] in "'\"" or text[-1:] in "'\"":
        text = f"'{text}'" if "'" not in text else f'"{text}"'
    return f"{field}={text}"


def facet_fields(lib) -> list[str]:
    """format, folder, the boards (as `board`, once there are some), then the keyword / keywords
    metadata fields, at most MAX_FACET_FIELDS."""
    fields = lib.fields()
    kept = [alias for alias, field in FIELD_ALIASES.items() if field in MEMBERSHIP_FIELDS and field in fields]
    extra = [f for f, kind in fields.items() if kind in ("keyword", "keywords") and f not in BUILTIN_FIELDS]
    return [*FACET_FIELDS, *kept, *sorted(extra)][:MAX_FACET_FIELDS]


def facet_counts(lib, where: list[str]) -> list[dict]:
    """Value counts of the facet fields among the images matching `where` (none if it is bad)."""
    if not lib.exists():
        return []
    facets = []
    for field in facet_fields(lib):
        try:
            facet = lib.facets(field, where, FACET_VALUES)
        except AdsearchError:
            return []  # a bad filter: the page's error says why
        if facet["values"]:
            facets.append({**facet, "field": field})  # as asked: `board`, not the field it stands for
    return facets


@router.get("/")
def index(
    request: Request,
    lib: LibraryDep,
    q: Annotated[str, Query(**limits_of("q"))] = "",
    mode: Mode = "hybrid",
    k: Annotated[int, Query(**limits_of("k"))] = PAGE_K,
    offset: Annotated[int, Query(**limits_of("offset"))] = 0,
    where: Annotated[list[str] | None, Query(description="filter clauses: format=PNG")] = None,
    diverse: bool = False,
    positive: Annotated[list[str] | None, Query(description="more like these image ids")] = None,
    negative: Annotated[list[str] | None, Query(description="not like these image ids")] = None,
):
    """Search (or, with filters and no query, browse) a page of results, with the filters' facets;
    `diverse` re-ranks for variety, `positive` / `negative` ids steer the search (feedback).
    No query and no filter: the empty search page (with the facets to start from)."""
    view = SearchView(q, mode, k, [w for w in where or [] if w.strip()], offset, diverse)
    response, error, facets = None, None, []
    try:
        view.positive = example_ids(positive, "'more like this'")
        view.negative = example_ids(negative, "'not this'")
    except ValueError as exc:
        error = str(exc)
    view.names = example_names(lib, [*view.positive, *view.negative]) if lib.exists() else {}
    if len(view.where) > MAX_CLAUSES:
        error = f"at most {MAX_CLAUSES} filter clauses"
    elif not error:
        if q.strip() or view.where:
            response, error = page_search(lib, view)
        facets = facet_counts(lib, view.where)
    return render(request, "index.html", q=q, mode=mode, k=k, response=response, error=error, view=view,
                  facets=facets, pager=True, feedback=True)  # fmt: skip


def page_search(lib, view: SearchView) -> tuple[SearchResponse | None, str | None]:
    """The page's search as one SearchRequest: its hits, or the reason it cannot run."""
    try:
        search = SearchRequest(
            q=view.q.strip()[: lib.settings.max_query_chars], mode=view.mode, k=view.k, offset=view.offset,
            where=view.where, diverse=view.diverse, positive=view.positive, negative=view.negative,
        )  # fmt: skip
        response = lib.search(search)
    except ValidationError as exc:
        return None, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    except AdsearchError as exc:
        return None, str(exc)
    if view.examples and response.mode == "browse":
        response.notes.append(BROWSE_FEEDBACK_NOTE)
    return response, None


@router.post("/search-image")
async def search_by_image(
    request: Request,
    lib: LibraryDep,
    file: Annotated[UploadFile, File()],
    mode: Annotated[Mode, Form()] = "hybrid",
):
    response, error = None, None
    try:
        data = await read_upload(file, lib.settings.max_upload_bytes)

        def search():  # decoding and searching are CPU work: off the event loop (as in /api/search/image)
            return lib.search(SearchRequest(mode=mode, k=PAGE_K), image=query_image(data, lib.settings))

        response = await run_in_threadpool(search)
    except AdsearchError as exc:
        error = f"{file.filename}: {exc}"
    view = SearchView("", mode, PAGE_K, [], 0)
    return render(request, "index.html", q="", mode=mode, k=PAGE_K, response=response, error=error,
                  image_query=file.filename, view=view, facets=[], pager=False)  # fmt: skip


@router.get("/images/{image_id}")
def image_page(request: Request, lib: LibraryDep, image_id: ImageId):
    payload = lib.get(image_id)
    similar, similar_error = None, None
    try:
        similar = lib.similar(image_id, k=8)
    except AdsearchError as exc:
        similar_error = str(exc)
    copies, copies_error = None, None
    try:  # the same creative resized, recompressed, cropped a little: no CLIP needed
        copies = lib.similar(image_id, mode="duplicate", k=24)
    except AdsearchError as exc:
        copies_error = str(exc)
    ocr = ocr_of(payload)
    readers = list(ocr["words_by_reader"])  # in the order they ran, then any other a word names
    return render(request, "image.html", id=image_id, p=payload, ocr=ocr, readers=readers, similar=similar,
                  similar_error=similar_error, copies=copies, copies_error=copies_error)  # fmt: skip


def render_upload(request: Request, lib, job: dict | None = None, error: str | None = None, status_code=200):
    """The upload page, following `job` when given, with the ten most recent uploads."""
    settings = lib.settings
    recent = [job_json(j) for j in lib.jobs.list()[:10]]
    return render(request, "upload.html", status_code, job=job, error=error, jobs=recent,
                  needs_key=bool(settings.api_key), max_files=settings.max_upload_files,
                  max_mib=settings.max_upload_bytes // 2**20)  # fmt: skip


@router.get("/upload")
def upload_page(request: Request, lib: LibraryDep):
    return render_upload(request, lib)


@router.post("/upload")
async def upload_form(
    request: Request,
    lib: LibraryDep,
    files: Annotated[list[UploadFile], File()],
    api_key: Annotated[str | None, Form()] = None,
):
    """The page's upload: stored and queued like POST /api/images; the answer follows the job."""
    htmx = "hx-request" in request.headers  # htmx swaps only 2xx answers: the reason must show
    if not key_accepted(lib.settings, api_key):
        return render_upload(request, lib, error="missing or wrong API key", status_code=200 if htmx else 401)
    try:
        contents = await read_uploads(files, lib.settings)
    except HTTPException as exc:
        return render_upload(request, lib, error=exc.detail, status_code=200 if htmx else exc.status_code)
    lib.jobs.start()
    job = await run_in_threadpool(lib.jobs.submit, contents)
    return render_upload(request, lib, job=job_json(job))


@router.get("/jobs/{job_id}")
def job_page(request: Request, lib: LibraryDep, job_id: JobId):
    return render_upload(request, lib, job=job_json(lib.jobs.get(job_id)))


@router.get("/stats")
def stats_page(request: Request, lib: LibraryDep):
    return render(request, "stats.html", s=lib.stats())
