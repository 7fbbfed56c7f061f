"""The OCR step for one image: every configured reader reads it, each reader's words are cleaned, and
the readings are merged into one result."""

from __future__ import annotations

from PIL import Image

from ocr_text.clean import clean_words, words_to_text
from ocr_text.merge import merge_words
from ocr_text.readers import load_reader, min_confidence
from ocr_text.readers.base import ReaderUnavailable
from ocr_text.readers.tesseract import TesseractMissingError
from ocr_text.settings import OcrSettings
from ocr_text.words import OcrResult, OcrWord


def read_each(image: Image.Image, settings: OcrSettings) -> tuple[dict[str, list[OcrWord]], dict[str, str]]:
    """Each reader's own (uncleaned) words, and the error of each reader that failed on this image.
    Raises when every reader failed, or when a reader cannot be loaded at all."""
    readings: dict[str, list[OcrWord]] = {}
    errors: dict[str, str] = {}
    for name in settings.readers:
        reader = load_reader(name, settings)
        try:
            readings[name] = reader.read(image)
        except (TesseractMissingError, ReaderUnavailable):
            raise
        except Exception as exc:  # noqa: BLE001 (one reader failing must not lose the others' words)
            if len(settings.readers) == 1:
                raise
            errors[name] = f"{type(exc).__name__}: {exc}"
    if not readings:
        raise RuntimeError("every OCR reader failed: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    return readings, errors


def combine(readings: dict[str, list[OcrWord]], settings: OcrSettings, errors=None) -> OcrResult:
    """One result from several readings: each cleaned with its reader's confidence cut, then merged
    (overlapping words: the more confident wins; lines rebuilt in reading order)."""
    kept = [clean_words(words, min_confidence(settings, name)) for name, words in readings.items()]
    raw = list(readings.values())
    if len(readings) > 1:
        kept_words, raw_words = merge_words(kept), merge_words(raw)
    else:
        kept_words, raw_words = kept[0], raw[0]
    return OcrResult(
        text=words_to_text(kept_words),
        raw_text=words_to_text(raw_words),
        words=kept_words,
        readers=tuple(readings),
        errors=dict(errors or {}),
    )


def read_text(image: Image.Image, settings: OcrSettings | None = None) -> OcrResult:
    """The whole OCR step for one image: read with every configured reader, clean, merge."""
    settings = settings or OcrSettings()
    readings, errors = read_each(image, settings)
    return combine(readings, settings, errors)
