"""Safely decoding image files (one pixel limit, checked before decoding), and the per-image work
done in OCR worker processes.

Kept free of torch and Qdrant imports so that worker processes start fast.
"""

from __future__ import annotations

import ctypes
import functools
import io
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from engine.errors import ImageError
from ocr_text import OcrResult, OcrSettings, read_text
from ocr_text.preprocess import flatten

PIL_FORMATS = {"JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF", "MPO"}
CLIP_INPUT_SIDE = 224
LARGE_PIXELS = 16_000_000  # a decode this large gives its memory back to the system once freed


@dataclass
class DecodedImage:
    """An upright RGB image plus what the file said about itself."""

    image: Image.Image
    width: int
    height: int
    format: str


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB form of any Pillow mode: transparency onto white, 16-bit scaled to 8-bit, CMYK converted.
    An RGB image is returned as it is (no full-size copy)."""
    image = flatten(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def pillow_limit(max_pixels: int) -> None:
    """Make Pillow's own decompression-bomb limit (Image.MAX_IMAGE_PIXELS, process-wide; also checked
    inside some decoders, e.g. for GIF frames and TIFF tiles) the `max_pixels` setting, so that the
    setting is the limit in both directions: Pillow's default of 89.5 MP would otherwise refuse
    images the setting allows, and allow frames the setting refuses."""
    if max_pixels != Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _open(data: bytes, max_pixels: int) -> tuple[Image.Image, str]:
    """Open (headers only: no pixel is decoded yet), check format and size against `max_pixels`;
    the image and its format (a multi-picture JPEG is a JPEG)."""
    if not data:
        raise ImageError("empty file")
    pillow_limit(max_pixels)
    image = Image.open(io.BytesIO(data))
    if image.format not in PIL_FORMATS:
        raise ImageError(f"unsupported image format {image.format}")
    _check_pixels(image.size, max_pixels)
    image.seek(0)
    return image, "JPEG" if image.format == "MPO" else image.format


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    pixels = size[0] * size[1]
    if pixels > max_pixels:
        raise ImageError(
            f"image too large ({size[0]}x{size[1]} = {pixels:,} pixels; limit {max_pixels:,}, "
            "setting max_image_pixels): refused as a possible decompression bomb"
        )


@contextmanager
def _decoding(max_pixels: int) -> Iterator[None]:
    """Pillow's errors as ImageError saying why; its decompression-bomb warning (an image over the
    limit by less than 2x) as an error too."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised content)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found.group(1)):,} pixels; " if found else ""
        raise ImageError(
            f"image too large ({pixels}limit {max_pixels:,}, setting max_image_pixels): "
            "refused as a possible decompression bomb"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"corrupt or truncated image ({exc})") from None


def decode_image(data: bytes, max_pixels: int = 120_000_000, reduce_to: int | None = None) -> DecodedImage:
    """Decode image bytes (first frame, EXIF orientation applied) or raise ImageError saying why.

    The pixel limit is checked from the file's header, before any pixel is decoded, and Pillow's own
    limit is set to it (`pillow_limit`). `reduce_to` (for a query image, which needs no more pixels
    than the OCR, CLIP and fingerprint of a query use): an image whose short side is longer comes
    back with that short side; a JPEG is then decoded at 1/2, 1/4 or 1/8 scale directly, others are
    decoded and shrunk at once, and the memory of the full-size decode is given back to the system.
    `width` and `height` are the file's (upright) size either way."""
    with _decoding(max_pixels):
        image, fmt = _open(data, max_pixels)
        width, height = image.size
        if reduce_to and fmt == "JPEG" and min(width, height) > reduce_to:
            image.draft(None, (reduce_to, reduce_to))  # decodes at the smallest scale >= reduce_to
        image.load()
        if image.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):
            width, height = height, width
        ImageOps.exif_transpose(image, in_place=True)  # no copy of an upright image
        large = image.width * image.height >= LARGE_PIXELS
        if reduce_to and min(image.size) > reduce_to:
            image = _shrink(image, reduce_to)
        image = to_rgb(image)
    if large and reduce_to:
        release_memory()  # the full-size decode is garbage now
    return DecodedImage(image, width, height, fmt)


def check_image(data: bytes, max_pixels: int = 120_000_000) -> str:
    """That `data` decodes as an image within `max_pixels` (ImageError saying why not); its format.
    Every pixel is decoded (a JPEG at 1/8 scale: all of its data is still read), nothing is kept."""
    with _decoding(max_pixels):
        image, fmt = _open(data, max_pixels)
        if fmt == "JPEG":
            image.draft(None, (1, 1))
        image.load()
        large = image.width * image.height >= LARGE_PIXELS
        image.close()
        del image
    if large:
        release_memory()
    return fmt


def _shrink(image: Image.Image, short_side: int) -> Image.Image:
    """The image with its short side `short_side` (a true-colour mode first: palette and 1-bit
    images only resample to their nearest pixel)."""
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = to_rgb(image)
    scale = short_side / min(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc's malloc_trim; a no-op elsewhere): after a
    large image is freed, glibc would otherwise keep most of its pages for the process."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # the C library the process already has loaded
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None


def clip_view(image: Image.Image) -> Image.Image:
    """Downscale so the short side is CLIP's input side: cheap to send between processes, same result."""
    short = min(image.size)
    if short <= CLIP_INPUT_SIDE:
        return image
    scale = CLIP_INPUT_SIDE / short
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


@dataclass
class AnalysedImage:
    """What a worker returns for one file: metadata, OCR and a small view for CLIP."""

    width: int
    height: int
    format: str
    ocr: OcrResult
    view: Image.Image
    ocr_seconds: float


def analyse_image(
    data: bytes, ocr_settings: OcrSettings, max_pixels: int, known_ocr: OcrResult | None = None
) -> AnalysedImage:
    """Decode + OCR one image (runs in a worker process); `known_ocr` skips the OCR."""
    decoded = decode_image(data, max_pixels)
    start = time.perf_counter()
    ocr = known_ocr or read_text(decoded.image, ocr_settings)
    ocr_seconds = 0.0 if known_ocr else time.perf_counter() - start
    analysed = AnalysedImage(
        decoded.width, decoded.height, decoded.format, ocr, clip_view(decoded.image), ocr_seconds
    )
    if decoded.image.width * decoded.image.height >= LARGE_PIXELS:
        del decoded  # the worker goes on with the next file: give the pages of this one back
        release_memory()
    return analysed
