"""Server-rendered pages (Jinja2 + HTMX): search, one image with its OCR boxes, uploads with their
progress, library statistics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from api.deps import ImageId, JobId, LibraryDep, Mode, key_accepted, ocr_of, read_upload, read_uploads
from engine.errors import AdsearchError, NotFound
from engine.filters import BUILTIN_FIELDS
from engine.images import decode_image
from engine.search import MODES, term_matches

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
_WORD = re.compile(r"[A-Za-z0-9]+")
READER_LABELS = {"tesseract": "Tesseract", "ppocr": "PP-OCR"}
PAGE_K = 24  # results per page unless the URL says otherwise
MAX_WHERE = 20  # filter clauses a page URL may carry (as the API allows)
FACET_FIELDS = ("format", "folder")  # built-in fields always offered, then keyword metadata fields
MAX_FACET_FIELDS = 6
FACET_VALUES = 10


def highlight(text: str, terms: list[str]) -> Markup:
    """Escape `text` and wrap the words matching any query term in <mark>."""
    if not terms:
        return escape(text)

    def mark(match: re.Match) -> str:
        word = match.group(0)
        hit = any(term_matches(t, word.lower()) for t in terms if len(t) > 1)
        return f"<mark>{word}</mark>" if hit else word

    return Markup(_WORD.sub(mark, str(escape(text))))


def confidence_class(confidence: float) -> str:
    return "high" if confidence >= 85 else "mid" if confidence >= 65 else "low"


def reader_label(reader: str) -> str:
    """How a reader is named on the pages."""
    return READER_LABELS.get(reader, reader)


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
templates.env.globals["modes"] = list(MODES)


def render(request: Request, name: str, status_code: int = 200, **context):
    return templates.TemplateResponse(request, name, context, status_code=status_code)


class SearchView:
    """What the search page shows besides the hits: the URL state (query, mode, filters, page) and
    links that change one part of it, the facet counts, the pager."""

    def __init__(self, q: str, mode: str, k: int, where: list[str], offset: int):
        self.q, self.mode, self.k, self.where, self.offset = q, mode, k, where, offset

    def url(self, where: list[str] | None = None, offset: int = 0) -> str:
        """The page's URL with `where` (default: the current filters) and `offset`."""
        params: list[tuple[str, str | int]] = [("q", self.q), ("mode", self.mode)]
        params += [("where", w) for w in (self.where if where is None else where)]
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


def clause(field: str, value: object) -> str:
    """`field=value` as the filter language reads it back (quoted when spaces at either end or quotes
    would otherwise be lost)."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if text != text.strip() or text[:1] in "'\"" or text[-1:] in "'\"":
        text = f"'{text}'" if "'" not in text else f'"{text}"'
    return f"{field}={text}"


def facet_fields(lib) -> list[str]:
    """format, folder, then the keyword / keywords metadata fields, at most MAX_FACET_FIELDS."""
    fields = lib.fields().items()
    extra = [f for f, kind in fields if kind in ("keyword", "keywords") and f not in BUILTIN_FIELDS]
    return [*FACET_FIELDS, *sorted(extra)][:MAX_FACET_FIELDS]


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
            facets.append(facet)
    return facets


@router.get("/")
def index(
    request: Request,
    lib: LibraryDep,
    q: Annotated[str, Query(max_length=2000)] = "",
    mode: Mode = "hybrid",
    k: Annotated[int, Query(ge=1, le=100)] = PAGE_K,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    where: Annotated[list[str] | None, Query(description="filter clauses: format=PNG")] = None,
):
    """Search (or, with filters and no query, browse) a page of results, with the filters' facets.
    No query and no filter: the empty search page (with the facets to start from)."""
    view = SearchView(q, mode, k, [w for w in where or [] if w.strip()], offset)
    response, error, facets = None, None, []
    if len(view.where) > MAX_WHERE:
        error = f"at most {MAX_WHERE} filter clauses"
    else:
        if q.strip() or view.where:
            try:
                query = q.strip()[: lib.settings.max_query_chars]
                response = lib.search(query, where=view.where, mode=mode, k=k, offset=offset)
            except AdsearchError as exc:
                error = str(exc)
        facets = facet_counts(lib, view.where)
    return render(request, "index.html", q=q, mode=mode, k=k, response=response, error=error, view=view,
                  facets=facets, pager=True)  # fmt: skip


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
        response = lib.search(image=decode_image(data, lib.settings.max_image_pixels).image, mode=mode, k=24)
    except AdsearchError as exc:
        error = f"{file.filename}: {exc}"
    view = SearchView("", mode, PAGE_K, [], 0)
    return render(request, "index.html", q="", mode=mode, k=PAGE_K, response=response, error=error,
                  image_query=file.filename, view=view, facets=[], pager=False)  # fmt: skip


@router.get("/images/{image_id}")
def image_page(request: Request, lib: LibraryDep, image_id: ImageId):
    try:
        payload = lib.get(image_id)
    except NotFound as exc:
        return render(request, "error.html", message=str(exc), status_code=404)
    similar, similar_error = None, None
    try:
        similar = lib.similar(image_id, k=8)
    except AdsearchError as exc:
        similar_error = str(exc)
    ocr = ocr_of(payload)
    readers = list(ocr["words_by_reader"])  # in the order they ran, then any other a word names
    return render(request, "image.html", id=image_id, p=payload, ocr=ocr, readers=readers, similar=similar,
                  similar_error=similar_error)  # fmt: skip


def render_upload(request: Request, lib, job: dict | None = None, error: str | None = None, status_code=200):
    """The upload page, following `job` when given, with the ten most recent uploads."""
    settings = lib.settings
    recent = [j.public() for j in lib.jobs.list()[:10]]
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
    return render_upload(request, lib, job=job.public())


@router.get("/jobs/{job_id}")
def job_page(request: Request, lib: LibraryDep, job_id: JobId):
    try:
        job = lib.jobs.get(job_id)
    except NotFound as exc:
        return render(request, "error.html", message=str(exc), status_code=404)
    return render_upload(request, lib, job=job.public())


@router.get("/stats")
def stats_page(request: Request, lib: LibraryDep):
    return render(request, "stats.html", s=lib.stats())
