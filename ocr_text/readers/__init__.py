"""OCR readers, one module each behind the `Reader` interface (Tesseract, PP-OCR), and their
registry: a reader is known by its `ReaderKind` (how to build it, its signature, its confidence
cut). Another package adds one with `register`.

Readers are loaded once per process (OCR worker processes keep theirs for the whole ingest).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from ocr_text.readers import ppocr, tesseract
from ocr_text.readers.base import Reader, ReaderKind, ReaderUnavailable
from ocr_text.settings import PIPELINE_VERSION, OcrSettings

_KINDS: dict[str, ReaderKind] = {}


def register(kind: ReaderKind) -> None:
    """Make a reader known by its name (ValueError if the name is taken)."""
    if kind.name in _KINDS:
        raise ValueError(f"OCR reader {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind


def unregister(name: str) -> None:
    """Forget a reader (tests that add their own)."""
    _KINDS.pop(name, None)
    load_reader.cache_clear()


def reader_names() -> tuple[str, ...]:
    """The names of the registered readers, in registration order."""
    return tuple(_KINDS)


def reader_kind(name: str) -> ReaderKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unknown OCR reader {name!r}; known: {', '.join(_KINDS)}") from None


def ocr_signature(settings: OcrSettings) -> str:
    """Short text that changes whenever a setting changes the OCR output (stored with every point)."""
    return (
        PIPELINE_VERSION + "|" + "|".join(reader_kind(name).signature(settings) for name in settings.readers)
    )


def min_confidence(settings: OcrSettings, name: str) -> float:
    """The confidence below which the words of reader `name` are dropped."""
    return reader_kind(name).min_confidence(settings)


@cache
def load_reader(name: str, settings: OcrSettings) -> Reader:
    """The reader called `name`, configured by `settings`; raises ReaderUnavailable (or
    TesseractMissingError) when it cannot run here."""
    return reader_kind(name).build(settings)


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


for _kind in (tesseract.KIND, ppocr.KIND):
    register(_kind)

__all__ = [
    "Reader", "ReaderKind", "ReaderUnavailable", "load_reader", "min_confidence", "ocr_signature",
    "reader_kind", "reader_names", "register", "unregister", "usable_readers",
]  # fmt: skip
