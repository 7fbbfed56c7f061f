"""Finding and safely decoding image files, and the per-image work done in OCR worker processes.

Kept free of torch and Qdrant imports so that worker processes start fast.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import ImageError
from ocr_text import OcrResult, OcrSettings, read_text
from ocr_text.preprocess import flatten

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
PIL_FORMATS = {"JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF", "MPO"}
CLIP_INPUT_SIDE = 224


@dataclass
class DecodedImage:
    """An upright RGB image plus what the file said about itself."""

    image: Image.Image
    width: int
    height: int
    format: str


def discover(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Image files under `paths` (files or folders, recursive, sorted), each real file once.

    Symlinked folders are followed, but a folder already visited (a symlink loop) is not entered again.
    """
    seen_dirs: set[str] = set()
    seen_files: set[str] = set()
    for root in paths:
        root = Path(root)
        if root.is_file() or not root.exists():
            candidates: Iterable[Path] = [root]
        else:
            candidates = _walk(root, seen_dirs)
        for path in candidates:
            if path.suffix.lower() not in IMAGE_SUFFIXES and path != root:
                continue
            key = os.path.realpath(path)
            if key not in seen_files:
                seen_files.add(key)
                yield path


def _walk(root: Path, seen_dirs: set[str]) -> Iterator[Path]:
    real = os.path.realpath(root)
    if real in seen_dirs:
        return
    seen_dirs.add(real)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir()  # follows symlinks; a dangling link is not a dir
        except OSError:
            is_dir = False
        if is_dir:
            yield from _walk(path, seen_dirs)
        else:
            yield path


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of any Pillow mode: transparency onto white, 16-bit scaled to 8-bit, CMYK converted."""
    return flatten(image).convert("RGB")


def decode_image(data: bytes, max_pixels: int = 120_000_000) -> DecodedImage:
    """Decode image bytes (first frame, EXIF orientation applied) or raise ImageError saying why."""
    if not data:
        raise ImageError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in PIL_FORMATS:
                raise ImageError(f"unsupported image format {image.format}")
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"image too large ({width}x{height} = {width * height:,} pixels; limit {max_pixels:,}): "
                    "refused as a possible decompression bomb"
                )
            image.seek(0)
            image.load()
            fmt = "JPEG" if image.format == "MPO" else image.format
            image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised content)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"refused as a possible decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"corrupt or truncated image ({exc})") from None
    return DecodedImage(to_rgb(image), image.width, image.height, fmt)


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
    return AnalysedImage(
        decoded.width, decoded.height, decoded.format, ocr, clip_view(decoded.image), ocr_seconds
    )
