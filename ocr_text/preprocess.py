"""Image preprocessing before Tesseract: greyscale, resize to each pass's scale, stretch contrast."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

# Tesseract reads best when letters are 20-40 px tall, and no single scale suits an ad: small print
# needs upscaling, while big stylised headlines are often only read once the image is *smaller*
# (measured on ads377: reading at short sides 700 and 1600 and merging the words finds much more of
# the ads' text than one pass at 1200; docs/decisions.md). Each OCR pass resizes the short side to
# one of these.
DEFAULT_SCALES = (700, 1600)
MAX_UPSCALE = 3.0
MAX_UPSCALED_PIXELS = 25_000_000  # upscaling a huge banner would make a very slow Tesseract job
TESSERACT_MAX_SIDE = 32_000  # Tesseract refuses images over 32767 px on a side ("Image too large")


def flatten(image: Image.Image) -> Image.Image:
    """8-bit image without transparency: 16/32-bit integer greys scaled down, transparent areas white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image


def to_greyscale(image: Image.Image) -> Image.Image:
    """Return an 8-bit greyscale copy; transparent areas become white, 16-bit is scaled down."""
    return flatten(image).convert("L")


def rescale(image: Image.Image, short_side: int) -> tuple[Image.Image, float]:
    """Resize so the shorter side is `short_side` px: down, or up by at most MAX_UPSCALE x within a
    pixel budget; never longer than Tesseract accepts. Returns (image, scale applied)."""
    short, long = min(image.size), max(image.size)
    if short <= 0:
        return image, 1.0
    scale = short_side / short
    if scale > 1.0:
        scale = max(1.0, min(scale, MAX_UPSCALE, (MAX_UPSCALED_PIXELS / (image.width * image.height)) ** 0.5))
    scale = min(scale, TESSERACT_MAX_SIDE / long)
    if abs(scale - 1.0) < 0.02:  # not worth a resampling pass
        return image, 1.0
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS), scale


def stretch_contrast(image: Image.Image, cutoff: float = 1.0) -> Image.Image:
    """Stretch the histogram so low-contrast text spans the full range (ignores `cutoff`% outliers)."""
    return ImageOps.autocontrast(image, cutoff=cutoff)


def prepare_for_ocr(grey: Image.Image, short_side: int) -> tuple[Image.Image, float]:
    """One pass's input from a greyscale image: resized, contrast stretched. Returns it and the scale."""
    resized, scale = rescale(grey, short_side)
    return stretch_contrast(resized), scale


def otsu_threshold(grey: Image.Image) -> int:
    """The grey level that best splits the histogram into two classes (Otsu's method)."""
    hist = np.asarray(grey.histogram()[:256], dtype=np.float64)
    levels = np.arange(256)
    weight = np.cumsum(hist)
    total = weight[-1]
    if total == 0:
        return 127
    mass = np.cumsum(hist * levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = mass / weight
        mean_high = (mass[-1] - mass) / (total - weight)
        between = weight * (total - weight) * (mean_low - mean_high) ** 2
    return int(np.nanargmax(between[:-1]))


def binarise(grey: Image.Image, invert: bool = False) -> Image.Image:
    """Black text on white after Otsu thresholding; `invert` for light text on dark areas."""
    threshold = otsu_threshold(grey)
    dark, light = (255, 0) if invert else (0, 255)
    return grey.point(lambda v: light if v > threshold else dark, "L")
