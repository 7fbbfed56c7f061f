"""What every OCR reader is: a name and `read(image) -> words` in original-image pixels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from ocr_text.words import OcrWord

if TYPE_CHECKING:
    from ocr_text.settings import OcrSettings


class ReaderUnavailable(RuntimeError):
    """A reader's program, package or models cannot be loaded on this machine."""


class Reader(Protocol):
    """An OCR engine behind one small interface. Words carry the reader's name, a confidence on the
    0-100 scale and a box in the original image's pixels; cleaning and merging happen elsewhere."""

    name: str

    def read(self, image: Image.Image) -> list[OcrWord]: ...


@dataclass(frozen=True)
class ReaderKind:
    """A reader as the registry (ocr_text.readers) knows it: how to build one from the settings,
    what of the settings changes its output (its part of the pipeline signature), and the
    confidence below which its words are dropped."""

    name: str
    build: Callable[[OcrSettings], Reader]
    signature: Callable[[OcrSettings], str]
    min_confidence: Callable[[OcrSettings], float]
