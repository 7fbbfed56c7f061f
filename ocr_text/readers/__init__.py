"""OCR readers, one module each behind the `Reader` interface: Tesseract and PP-OCR.

Readers are loaded once per process (OCR worker processes keep theirs for the whole ingest).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from ocr_text.readers.base import Reader, ReaderUnavailable
from ocr_text.settings import READER_NAMES, OcrSettings


@cache
def load_reader(name: str, settings: OcrSettings) -> Reader:
    """The reader called `name`, configured by `settings`; raises ReaderUnavailable (or
    TesseractMissingError) when it cannot run here."""
    if name == "tesseract":
        from ocr_text.readers.tesseract import TesseractReader

        return TesseractReader(settings)
    if name == "ppocr":
        from ocr_text.readers.ppocr import PpocrReader

        return PpocrReader(settings.ppocr_models, settings.ppocr_det_side)
    raise ValueError(f"unknown OCR reader {name!r}; known: {', '.join(READER_NAMES)}")


def usable_readers(settings: OcrSettings) -> tuple[OcrSettings, dict[str, str]]:
    """`settings` narrowed to the readers that load here, and why each other one does not. A reader
    that cannot load is left out and OCR goes on with the rest; when none is left, Tesseract (the
    reader every installation has) takes over. Tesseract missing is an error when it is needed."""
    missing: dict[str, str] = {}
    for name in settings.readers:
        try:
            load_reader(name, settings)
        except ReaderUnavailable as exc:
            missing[name] = str(exc)
    if not missing:
        return settings, {}
    kept = tuple(name for name in settings.readers if name not in missing) or ("tesseract",)
    if "tesseract" in kept:
        load_reader("tesseract", settings)  # raises TesseractMissingError with the package to install
    return replace(settings, readers=kept), missing


__all__ = ["Reader", "ReaderUnavailable", "load_reader", "usable_readers"]
