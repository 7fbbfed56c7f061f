"""What every OCR reader is: a name and `read(image) -> words` in original-image pixels."""

from __future__ import annotations

from typing import Protocol

from PIL import Image

from ocr_text.words import OcrWord


class ReaderUnavailable(RuntimeError):
    """A reader's program, package or models cannot be loaded on this machine."""


class Reader(Protocol):
    """An OCR engine behind one small interface. Words carry the reader's name, a confidence on the
    0-100 scale and a box in the original image's pixels; cleaning and merging happen elsewhere."""

    name: str

    def read(self, image: Image.Image) -> list[OcrWord]: ...
