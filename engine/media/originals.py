"""The files of a library's images, served back: only the bytes that were ingested (a regular file,
not a link, FIFO or device, with the stored size and sha256; a remote image's copy kept at ingest),
thumbnails made once from them, and query images decoded at the size a query uses."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
from pathlib import Path

from PIL import Image

from engine.errors import NotFound
from engine.media.images import decode_image
from engine.media.sources import (
    SourcePolicy,
    display,
    is_remote,
    is_url,
    kept_original,
    local_names,
    read_bytes,
    write_atomically,
)
from engine.settings import Settings

THUMBNAIL_SIZES = (64, 128, 256, 512, 1024)


class Originals:
    """The originals and thumbnails of the images stored under one data folder."""

    def __init__(self, data_dir: Path, max_image_pixels: int):
        self.data_dir = data_dir
        self.thumbnail_dir = data_dir / "thumbnails"
        self.max_image_pixels = max_image_pixels

    def read(self, image_id: str, payload: dict) -> bytes:
        """The image's bytes as ingested: from the first of its paths that is still a regular file
        (not a link, FIFO or device) with the stored size and sha256; for a URL, the copy kept in
        <db>/originals at ingest (a request never makes the server fetch a URL), checked alike.
        NotFound saying why for each path when none is."""
        reasons = []
        for path in payload.get("paths", []):
            try:
                return self._read_at(path, payload, image_id)
            except OSError as exc:
                reasons.append(f"{display(path)}: {exc.strerror or exc}")
        why = "; ".join(reasons) or "no path stored"
        raise NotFound(f"the original file of image {image_id} is not available ({why})")

    def _read_at(self, path: str, payload: dict, image_id: str) -> bytes:
        *others, last = stored_files(path, image_id, self.data_dir)
        for name in others:
            with contextlib.suppress(FileNotFoundError):
                return _as_ingested(name, payload)
        try:
            return _as_ingested(last, payload)
        except FileNotFoundError:
            if is_remote(path):  # never fetched on a reader's request
                raise OSError(errno.ENOENT, "no copy kept: ingest its source again to keep one") from None
            raise

    def thumbnail(self, image_id: str, size: int, payload: dict) -> Path:
        """A JPEG thumbnail at most `size` px on its long side (rounded up to one of THUMBNAIL_SIZES,
        so a client cannot fill the cache with every size), made once from the verified original and
        cached on disk; concurrent requests each write a temporary file of their own."""
        size = next((s for s in THUMBNAIL_SIZES if s >= size), THUMBNAIL_SIZES[-1])
        target = self.thumbnail_dir / f"{image_id}-{size}.jpg"
        if not target.exists():
            image = decode_image(self.read(image_id, payload), self.max_image_pixels, reduce_to=size).image
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            image.save(out, "JPEG", quality=85)
            write_atomically(target, out.getvalue())
        return target

    def forget(self, image_id: str) -> None:
        """Remove an image's thumbnails and the copy kept of a remote image."""
        for thumb in self.thumbnail_dir.glob(f"{image_id}-*.jpg"):
            thumb.unlink(missing_ok=True)
        kept_original(self.data_dir, image_id).unlink(missing_ok=True)


def stored_files(path: str, image_id: str, data_dir: Path) -> list[str]:
    """The file-system names that may hold the bytes of one of an image's stored paths: for a remote
    URL the copy kept at ingest (never the URL itself); for a local path or `file://` URL the name as
    stored, then unescaped (engine.media.sources.portable_name)."""
    if is_remote(path):
        return [str(kept_original(data_dir, image_id))]
    return local_names(path.split("://", 1)[1] if is_url(path) else path)


def query_image(data: bytes, settings: Settings) -> Image.Image:
    """A query image's bytes decoded under the pixel limit at the size a query uses: no more pixels
    than the largest OCR pass reads (CLIP and the fingerprint need fewer)."""
    return decode_image(data, settings.max_image_pixels, reduce_to=max(settings.ocr_scales)).image


def _as_ingested(location: str | Path, payload: dict) -> bytes:
    """The bytes of a local file when they are the image's ingested bytes (a regular file, not a
    link, with the stored size and sha256); OSError saying why otherwise."""
    size = payload.get("bytes") or 0
    try:
        data = read_bytes(location, SourcePolicy(max_bytes=size), follow_links=False)
    except OSError as exc:
        if exc.errno != errno.EFBIG:
            raise
        data = b""  # larger than it was: changed
    if len(data) != size or hashlib.sha256(data).hexdigest() != payload.get("sha256"):
        raise OSError(errno.EBADMSG, "changed since it was ingested (sha256 differs): not served")
    return data
