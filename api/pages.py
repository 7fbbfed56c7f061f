"""Server-rendered pages (Jinja2 + HTMX): search, one image with its OCR boxes, uploads with their
progress, library statistics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from api.deps import ImageId, JobId, LibraryDep, Mode, key_accepted, ocr_of, read_upload, read_uploads
from engine.errors import AdsearchError, NotFound
from engine.images import decode_image
from engine.search import MODES, term_matches

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
_WORD = re.compile(r"[A-Za-z0-9]+")
READER_LABELS = {"tesseract": "Tesseract", "ppocr": "PP-OCR"}


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


templates.env.filters["highlight"] = highlight
templates.env.filters["reader_label"] = reader_label
templates.env.filters["confidence_class"] = confidence_class
templates.env.globals["modes"] = list(MODES)


def render(request: Request, name: str, status_code: int = 200, **context):
    return templates.TemplateResponse(request, name, context, status_code=status_code)


@router.get("/")
def index(
    request: Request,
    lib: LibraryDep,
    q: Annotated[str, Query(max_length=2000)] = "",
    mode: Mode = "hybrid",
    k: Annotated[int, Query(ge=1, le=100)] = 24,
):
    response, error = None, None
    if q.strip():
        try:
            response = lib.search(q.strip()[: lib.settings.max_query_chars], mode=mode, k=k)
        except AdsearchError as exc:
            error = str(exc)
    return render(request, "index.html", q=q, mode=mode, k=k, response=response, error=error)


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
    return render(request, "index.html", q="", mode=mode, k=24, response=response, error=error,
                  image_query=file.filename)  # fmt: skip


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
