"""FastAPI app: JSON routes under /api, pages from api.pages, static files, and the guards in
front of them (api.guards). No search logic here."""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, File, Form, Query, Request, Response, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import (
    ID_PATTERN,
    ImageId,
    JobId,
    LibraryDep,
    Mode,
    job_json,
    ocr_of,
    read_upload,
    read_uploads,
    require_key,
    validate_query,
)
from api.guards import AdmissionLimit, CrossSiteGuard, HostGuard, Occupancy
from engine.config import Settings
from engine.errors import AdsearchError, ImageError, NotFound, SearchError, StoreError
from engine.library import Library
from engine.media.originals import query_image
from engine.search import SearchResponse, parse_weights

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp",
               "GIF": "image/gif", "TIFF": "image/tiff"}  # fmt: skip
STATUS_OF = [(NotFound, 404), (SearchError, 422), (ImageError, 422), (StoreError, 503), (AdsearchError, 400)]
MAX_CLAUSE_CHARS = 500  # one filter clause, in the query string as in a JSON body
ClauseText = Annotated[str, Field(max_length=MAX_CLAUSE_CHARS)]


Where = Annotated[
    tuple[ClauseText, ...],
    Query(max_length=20, description="filter clauses, all must hold: brand=Audi, year>=2014, topic in [a,b]"),
]


Examples = Annotated[
    tuple[Annotated[str, Field(pattern=ID_PATTERN)], ...],
    Query(max_length=20, description="image ids for feedback: more like these (positive), unlike those"),
]


class SearchRequest(BaseModel):
    """A search (or, without `q`, a browse) as a JSON body."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field("", max_length=2000)
    mode: Mode = "hybrid"
    k: int = Field(10, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000)
    weights: str | None = Field(None, max_length=200, description="e.g. image=1,text=2")
    where: list[ClauseText] = Field(default_factory=list, max_length=20)
    sort: str = Field("ingested_at", max_length=64)
    order: Literal["desc", "asc"] = "desc"
    diverse: bool = False
    positive: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(default_factory=list, max_length=20)
    negative: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(default_factory=list, max_length=20)


def run_search(lib: Library, search: SearchRequest) -> dict:
    """Search or browse as the request says; every bad part is a 422 with the reason."""
    query = validate_query(search.q, lib.settings) if search.q.strip() else ""
    response = lib.search(
        query, where=search.where, mode=search.mode, k=search.k, offset=search.offset,
        weights=parse_weights(search.weights), sort=search.sort, descending=search.order == "desc",
        diverse=search.diverse, positive=search.positive, negative=search.negative,
    )  # fmt: skip
    return hits_json(response)


def json_safe(value: object) -> object:
    """`value` (a validation error's detail) as strict UTF-8 JSON can carry it: NaN and the
    infinities a JSON body may hold (Python's json reads them) become the strings "NaN", "Infinity",
    "-Infinity"; a lone surrogate (`"\\ud800"` in a body) is written as that escape."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def hits_json(response: SearchResponse) -> dict:
    """A search response with URLs for each hit's thumbnail, file and page."""
    data = response.to_dict()
    for hit in data["hits"]:
        hit["thumbnail_url"] = f"/api/images/{hit['id']}/thumbnail?size=256"
        hit["image_url"] = f"/api/images/{hit['id']}/file"
        hit["page_url"] = f"/images/{hit['id']}"
    return data


def create_app(library: Library | None = None, settings: Settings | None = None) -> FastAPI:
    """The app over `library` (or one opened from `settings`)."""
    library = library or Library(settings or Settings())
    limits = library.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        library.jobs.start()  # finishes uploads a previous run accepted but did not ingest
        yield
        library.jobs.stop()

    app = FastAPI(
        title="adsearch",
        description="Hybrid OCR + visual search over image ads (Tesseract, PP-OCR, CLIP, Qdrant RRF fusion).",
        version="0.1.0",
        lifespan=lifespan,
        # Refuse oversized bodies while they stream in, before anything is spooled to disk.
        max_body_size=limits.max_upload_files * (limits.max_upload_bytes + 2**16),
        form_limits={"max_fields": 16},  # file count: read_uploads answers 413 with the limit
    )
    app.state.library = library
    app.state.occupancy = occupancy = Occupancy(library.settings.max_concurrent_requests)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Starlette runs the last added outermost: Host first, then cross-site, then the admission limit.
    app.add_middleware(AdmissionLimit, limit=occupancy.limit, occupancy=occupancy, max_body=app.max_body_size)
    app.add_middleware(CrossSiteGuard)
    app.add_middleware(HostGuard, allowed=library.settings.served_hosts())

    @app.exception_handler(AdsearchError)
    async def adsearch_error(request: Request, exc: AdsearchError) -> JSONResponse:
        status = next(code for kind, code in STATUS_OF if isinstance(exc, kind))
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with FastAPI's usual detail, made strict JSON (a body may hold NaN or Infinity)."""
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    @app.get("/health")
    async def health(lib: LibraryDep) -> dict:
        """Liveness: answered on the event loop, never refused by the admission limit; also says
        how busy the server is (`saturated`: the next search gets 503)."""
        return {"status": "ok", "images": lib.store.count(), **occupancy.public()}

    @app.get("/health/ready", responses={503: {"description": "every request slot is taken"}})
    async def ready(response: Response) -> dict:
        """Readiness: 200 while the server takes more work, 503 while every request slot is taken
        (an orchestrator then sends traffic elsewhere); answered on the event loop."""
        if occupancy.saturated:
            response.status_code = 503
            response.headers["Retry-After"] = "1"
        return {"ready": not occupancy.saturated, **occupancy.public()}

    @app.get("/api/search")
    def search(
        lib: LibraryDep,
        q: Annotated[
            str, Query(max_length=2000, description="text query; empty: browse the filtered images")
        ] = "",
        mode: Mode = "hybrid",
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
        weights: Annotated[str | None, Query(max_length=200, description="e.g. image=1,text=2")] = None,
        where: Where = (),
        sort: Annotated[
            str, Query(max_length=64, description="browse order: an indexed field")
        ] = "ingested_at",
        order: Literal["desc", "asc"] = "desc",
        diverse: Annotated[bool, Query(description="maximal marginal relevance: no near-copies")] = False,
        positive: Examples = (),
        negative: Examples = (),
    ) -> dict:
        """Hybrid (or single-channel) search by text among the images matching every `where` clause
        (repeat it: `where=brand=Audi&where=year>=2014`); without `q`, the matching images in `sort`
        order. `total` counts the matching images when filtered or browsing."""
        try:
            search = SearchRequest(q=q, mode=mode, k=k, offset=offset, weights=weights, where=list(where),
                                   sort=sort, order=order, diverse=diverse, positive=list(positive),
                                   negative=list(negative))  # fmt: skip
        except ValidationError as exc:  # a limit the parameters above do not state: still the client's
            errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        return run_search(lib, search)

    @app.post("/api/search")
    def search_json(lib: LibraryDep, search: SearchRequest) -> dict:
        """The same search with a JSON body, for long filters."""
        return run_search(lib, search)

    @app.get("/api/facets")
    def facets(
        lib: LibraryDep,
        field: Annotated[str, Query(min_length=1, max_length=64, description="a keyword or integer field")],
        where: Where = (),
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> dict:
        """How many images have each value of `field` among those matching the filters, most first
        (the counts do not depend on a query: a search ranks every matching image)."""
        return lib.facets(field, list(where), limit)

    @app.get("/api/fields")
    def fields(lib: LibraryDep) -> dict:
        """The fields filters and facets may name, with their types."""
        return {"fields": lib.fields()}

    @app.post(
        "/api/search/image",
        max_body_size=library.settings.max_upload_bytes + 2**16,
        form_limits={"max_files": 1, "max_fields": 8},
    )
    async def search_image(
        lib: LibraryDep,
        file: Annotated[UploadFile, File(description="query image")],
        mode: Annotated[Mode, Form()] = "hybrid",
        k: Annotated[int, Form(ge=1, le=100)] = 10,
    ) -> dict:
        """Search with an uploaded image (its OCR text feeds the text channels)."""
        data = await read_upload(file, lib.settings.max_upload_bytes)

        def search() -> SearchResponse:  # decoding and searching are CPU work: off the event loop
            return lib.search(image=query_image(data, lib.settings), mode=mode, k=k)

        return hits_json(await run_in_threadpool(search))

    @app.get("/api/images/{image_id}")
    def image_info(lib: LibraryDep, image_id: ImageId) -> dict:
        """Metadata and OCR of one image."""
        payload = lib.get(image_id)
        return {"id": image_id, **{k: v for k, v in payload.items() if k != "ocr_words"}}

    @app.get("/api/images/{image_id}/ocr")
    def image_ocr(lib: LibraryDep, image_id: ImageId) -> dict:
        """Cleaned text, raw text, and words with boxes, confidences and the reader that read each;
        the readers used, how many words each contributed, and why any of them failed."""
        p = lib.get(image_id)
        ocr = ocr_of(p)
        return {
            "id": image_id,
            "text": p.get("ocr_text", ""),
            "raw_text": p.get("ocr_raw_text", ""),
            "confidence": p.get("ocr_confidence", 0.0),
            "width": p.get("width"),
            "height": p.get("height"),
            "readers": ocr["readers"],
            "words_by_reader": ocr["words_by_reader"],
            "errors": ocr["errors"],
            "words": ocr["words"],
        }

    @app.get("/api/images/{image_id}/file")
    def image_file(lib: LibraryDep, image_id: ImageId) -> Response:
        """The original bytes, exactly as ingested (sha256 checked); 404 with the reason when the file
        is gone, changed, or no longer a regular file."""
        payload = lib.get(image_id)
        media = MEDIA_TYPES.get(payload.get("format", ""), "application/octet-stream")
        data = lib.original(image_id)
        return Response(data, media_type=media, headers={"X-Content-Type-Options": "nosniff"})

    @app.get("/api/images/{image_id}/thumbnail")
    def image_thumbnail(
        lib: LibraryDep, image_id: ImageId, size: Annotated[int, Query(ge=32, le=1024)] = 256
    ) -> FileResponse:
        """A cached JPEG thumbnail."""
        return FileResponse(
            lib.thumbnail(image_id, size), media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"}
        )

    @app.get("/api/images/{image_id}/similar")
    def image_similar(
        lib: LibraryDep, image_id: ImageId, mode: Mode = "hybrid", k: Annotated[int, Query(ge=1, le=100)] = 10
    ) -> dict:
        """More like this: the image's own vectors as the query."""
        return hits_json(lib.similar(image_id, mode=mode, k=k))

    @app.post("/api/images", status_code=202, dependencies=[Depends(require_key)])
    async def upload_images(
        lib: LibraryDep,
        files: Annotated[list[UploadFile], File()],
        response: Response,
        wait: Annotated[bool, Query(description="answer when the job is done (200), not at once")] = False,
    ) -> dict:
        """Accept images for ingest: 202 with the job (status URL in `Location`) once every file is
        stored durably; ingest runs in the background, one job at a time. Files that are not images
        fail at once. `wait=true` answers when the job is done, with each file's result."""
        contents = await read_uploads(files, lib.settings)
        lib.jobs.start()
        job = await run_in_threadpool(lib.jobs.submit, contents)
        if wait:
            job = await run_in_threadpool(lib.jobs.wait, job.id)
            response.status_code = 200
        response.headers["Location"] = f"/api/jobs/{job.id}"
        return job_json(job)

    @app.get("/api/jobs")
    def list_jobs(lib: LibraryDep, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict:
        """The most recent upload jobs, newest first."""
        return {"jobs": [job_json(job) for job in lib.jobs.list()[:limit]]}

    @app.get("/api/jobs/{job_id}")
    def job_status(lib: LibraryDep, job_id: JobId) -> dict:
        """One upload job: status (queued, running, done, interrupted), progress, counts, and each
        file's result (ingested, unchanged, failed with the reason, cancelled, or pending)."""
        return job_json(lib.jobs.get(job_id))

    @app.delete("/api/images/{image_id}", dependencies=[Depends(require_key)])
    def delete_image(lib: LibraryDep, image_id: ImageId) -> dict:
        """Remove an image from the collection and cancel its pending uploads (the original file stays
        unless it was uploaded here)."""
        return lib.delete(image_id)

    @app.get("/api/stats")
    def stats(lib: LibraryDep) -> dict:
        """Counts, formats, sizes, OCR coverage and text lengths, models and channels."""
        return lib.stats()

    from api.pages import router

    app.include_router(router)
    return app
