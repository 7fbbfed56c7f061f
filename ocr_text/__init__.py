"""Tesseract OCR for ad images: preprocessing, word boxes with confidences, cleaning.

Pure functions over Pillow images; nothing here knows about vectors or storage.
"""

from ocr_text.clean import clean_words, is_garbage, normalise_whitespace, words_to_text
from ocr_text.preprocess import prepare_for_ocr
from ocr_text.tesseract import (
    OcrResult,
    OcrSettings,
    OcrWord,
    TesseractMissingError,
    parse_tesseract_data,
    read_text,
    tesseract_version,
)

__all__ = [
    "OcrResult",
    "OcrSettings",
    "OcrWord",
    "TesseractMissingError",
    "clean_words",
    "is_garbage",
    "normalise_whitespace",
    "parse_tesseract_data",
    "prepare_for_ocr",
    "read_text",
    "tesseract_version",
    "words_to_text",
]
