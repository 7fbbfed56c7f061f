"""The routes of stored images: metadata, OCR, the original bytes, thumbnails, delete; statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Query, Response
from fastapi.responses import FileResponse

from api.deps import (
    ImageId,
    LibraryDep,
    ocr_of,
    require_key,
)
from engine.library import Library

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp",
               "GIF": "image/gif", "TIFF": "image/tiff"}  # fmt: skip


def add_image_routes(app: FastAPI, library: Library) -> None:
    """One image's metadata, OCR, file and thumbnail; delete; collection statistics."""

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

    @app.delete("/api/images/{image_id}", dependencies=[Depends(require_key)])
    def delete_image(lib: LibraryDep, image_id: ImageId) -> dict:
        """Remove an image from the collection and cancel its pending uploads (the original file stays
        unless it was uploaded here)."""
        return lib.delete(image_id)

    @app.get("/api/stats")
    def stats(lib: LibraryDep) -> dict:
        """Counts, formats, sizes, OCR coverage and text lengths, models and channels."""
        return lib.stats()
