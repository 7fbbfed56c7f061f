"""FastAPI app: JSON routes under /api, pages from api.pages, static files. No search logic here."""

from __future__ import annotations

import secrets
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

from fastapi import (
    Depends,
    FastAPI,
    File,
    Form,
    Header,
    HTTPException,
    Query,
    Request,
    UploadFile,
)
from fastapi import (
    Path as PathParam,
)
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from engine.config import Settings
from engine.errors import AdsearchError, ImageError, NotFound, SearchError, StoreError
from engine.images import decode_image
from engine.ingest import stored_ocr
from engine.library import Library
from engine.search import SearchResponse, parse_weights

STATIC = Path(__file__).parent / "static"
ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp",
               "GIF": "image/gif", "TIFF": "image/tiff"}  # fmt: skip
Mode = Literal["hybrid", "visual", "text", "keyword"]
ImageId = Annotated[str, PathParam(pattern=ID_PATTERN, description="image id (UUID)")]


def get_library(request: Request) -> Library:
    return request.app.state.library


LibraryDep = Annotated[Library, Depends(get_library)]


def require_key(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Write endpoints: when an API key is configured, the X-API-Key header must carry it."""
    expected = request.app.state.library.settings.api_key
    if expected and not (x_api_key and secrets.compare_digest(x_api_key, expected)):
        raise HTTPException(401, "missing or wrong API key (X-API-Key header)")


def hits_json(response: SearchResponse) -> dict:
    """A search response with URLs for each hit's thumbnail, file and page."""
    data = response.to_dict()
    for hit in data["hits"]:
        hit["thumbnail_url"] = f"/api/images/{hit['id']}/thumbnail?size=256"
        hit["image_url"] = f"/api/images/{hit['id']}/file"
        hit["page_url"] = f"/images/{hit['id']}"
    return data


def ocr_of(payload: dict) -> dict:
    """The OCR words and readers of a payload, filled in for points stored before there were several
    readers: every word has its `reader`, `readers` lists the readers used (in order), `words_by_reader`
    counts the kept words of each (the readers in order, then any other a word names), `errors` says
    which readers failed on the image and why."""
    ocr = stored_ocr(payload)  # words stored without a reader are Tesseract's (OcrWord's default)
    return {
        "readers": list(ocr.readers),
        "words_by_reader": ocr.words_by_reader(),
        "errors": dict(payload.get("ocr_errors") or {}),
        "words": ocr.words_as_dicts(),
    }


def validate_query(q: str, settings: Settings) -> str:
    q = q.strip()
    if not q:
        raise SearchError("the query is empty")
    if len(q) > settings.max_query_chars:
        raise SearchError(f"the query is longer than {settings.max_query_chars} characters")
    return q


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """Read an upload, refusing it (413) as soon as it passes `limit` bytes."""
    data = bytearray()
    while chunk := await upload.read(1 << 20):
        data += chunk
        if len(data) > limit:
            raise HTTPException(413, f"{upload.filename}: larger than the {limit // 2**20} MiB upload limit")
    return bytes(data)


def create_app(library: Library | None = None, settings: Settings | None = None) -> FastAPI:
    """The app over `library` (or one opened from `settings`)."""
    library = library or Library(settings or Settings())
    app = FastAPI(
        title="adsearch",
        description="Hybrid OCR + visual search over image ads (Tesseract, PP-OCR, CLIP, Qdrant RRF fusion).",
        version="0.1.0",
    )
    app.state.library = library
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    status_of = [
        (NotFound, 404),
        (SearchError, 422),
        (ImageError, 422),
        (StoreError, 503),
        (AdsearchError, 400),
    ]

    @app.exception_handler(AdsearchError)
    async def adsearch_error(request: Request, exc: AdsearchError) -> JSONResponse:
        status = next(code for kind, code in status_of if isinstance(exc, kind))
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.get("/health")
    def health(lib: LibraryDep) -> dict:
        return {"status": "ok", "images": lib.store.count()}

    @app.get("/api/search")
    def search(
        lib: LibraryDep,
        q: Annotated[str, Query(min_length=1, max_length=2000, description="text query")],
        mode: Mode = "hybrid",
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
        weights: Annotated[str | None, Query(max_length=200, description="e.g. image=1,text=2")] = None,
    ) -> dict:
        """Hybrid (or single-channel) search by text."""
        query = validate_query(q, lib.settings)
        response = lib.search(query, mode=mode, k=k, offset=offset, weights=parse_weights(weights))
        return hits_json(response)

    @app.post("/api/search/image")
    async def search_image(
        lib: LibraryDep,
        file: Annotated[UploadFile, File(description="query image")],
        mode: Annotated[Mode, Form()] = "hybrid",
        k: Annotated[int, Form(ge=1, le=100)] = 10,
    ) -> dict:
        """Search with an uploaded image (its OCR text feeds the text channels)."""
        data = await read_upload(file, lib.settings.max_upload_bytes)
        image = decode_image(data, lib.settings.max_image_pixels).image
        return hits_json(lib.search(image=image, mode=mode, k=k))

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
    def image_file(lib: LibraryDep, image_id: ImageId) -> FileResponse:
        """The original bytes."""
        payload = lib.get(image_id)
        media = MEDIA_TYPES.get(payload.get("format", ""), "application/octet-stream")
        return FileResponse(lib.original(image_id), media_type=media)

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

    @app.post("/api/images", dependencies=[Depends(require_key)])
    async def upload_images(lib: LibraryDep, files: Annotated[list[UploadFile], File()]) -> dict:
        """Ingest uploaded images through the same pipeline (stored under the server's data folder)."""
        if len(files) > lib.settings.max_upload_files:
            raise HTTPException(413, f"at most {lib.settings.max_upload_files} files per upload")
        contents = [
            (f.filename or "upload", await read_upload(f, lib.settings.max_upload_bytes)) for f in files
        ]
        from starlette.concurrency import run_in_threadpool

        results = await run_in_threadpool(lib.add_uploads, contents)
        return {"results": [asdict(r) for r in results]}

    @app.delete("/api/images/{image_id}", dependencies=[Depends(require_key)])
    def delete_image(lib: LibraryDep, image_id: ImageId) -> dict:
        """Remove an image from the collection (the original file stays unless it was uploaded here)."""
        return lib.delete(image_id)

    @app.get("/api/stats")
    def stats(lib: LibraryDep) -> dict:
        """Counts, formats, sizes, OCR coverage and text lengths, models and channels."""
        return lib.stats()

    from api.pages import router

    app.include_router(router)
    return app
