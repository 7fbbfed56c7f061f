"""What the JSON routes and the pages share: the library dependency, parameter types, the API key
check, bounded upload reading, and the OCR view of a payload."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, UploadFile
from fastapi import Path as PathParam

from api.settings import ServeSettings
from engine.errors import SearchError
from engine.library import Library
from engine.schema import MAX_NAME_CHARS, SAVED_NAME_RULE, stored_ocr
from engine.search.request import ID_PATTERN, Mode

__all__ = ["ID_PATTERN", "Mode"]  # the faces take them from here with the other parameter types

JOB_PATTERN = r"^[0-9a-f]{32}$"
ImageId = Annotated[str, PathParam(pattern=ID_PATTERN, description="image id (UUID)")]
JobId = Annotated[str, PathParam(pattern=JOB_PATTERN, description="upload job id")]
# A board's or a watch's name: checked by the engine (a bad one is a 422 with engine.schema's rule); the
# length cap leaves room over the limit so a name a little too long gets that reason too.
NAME_CAP = 4 * MAX_NAME_CHARS
SavedName = Annotated[str, PathParam(max_length=NAME_CAP, description=SAVED_NAME_RULE)]


def get_library(request: Request) -> Library:
    return request.app.state.library


LibraryDep = Annotated[Library, Depends(get_library)]


def key_accepted(settings: ServeSettings, provided: str | None) -> bool:
    """No API key configured, or `provided` is it (constant-time compare)."""
    expected = settings.api_key
    return not expected or bool(provided and secrets.compare_digest(provided.encode(), expected.encode()))


def require_key(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Write endpoints: when an API key is configured, the X-API-Key header must carry it."""
    if not key_accepted(request.app.state.library.settings, x_api_key):
        raise HTTPException(401, "missing or wrong API key (X-API-Key header)")


def validate_query(q: str, settings: ServeSettings) -> str:
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


async def read_uploads(files: list[UploadFile], settings: ServeSettings) -> list[tuple[str, bytes]]:
    """(name, bytes) of each uploaded file, within the per-request file count and per-file size."""
    if len(files) > settings.max_upload_files:
        raise HTTPException(413, f"at most {settings.max_upload_files} files per upload")
    return [(f.filename or "upload", await read_upload(f, settings.max_upload_bytes)) for f in files]


def job_json(job) -> dict:
    """An upload job as the API and the pages show it: engine.jobs' public view plus its status URL."""
    public = job.public()
    return {"id": public.pop("id"), "url": f"/api/jobs/{job.id}", **public}


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
