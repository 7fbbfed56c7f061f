"""Reading text from ad images: OCR readers (Tesseract, PP-OCR), preprocessing, merging, cleaning.

Pure functions over Pillow images; nothing here knows about vectors or storage.
"""

from ocr_text.clean import clean_words, is_garbage, normalise_whitespace, words_to_text
from ocr_text.merge import merge_words
from ocr_text.pipeline import combine, read_each, read_text
from ocr_text.preprocess import prepare_for_ocr
from ocr_text.readers import (
    ReaderKind,
    ReaderUnavailable,
    load_reader,
    min_confidence,
    ocr_signature,
    reader_names,
    register,
    usable_readers,
)
from ocr_text.readers.tesseract import TesseractMissingError, parse_tesseract_data, tesseract_version
from ocr_text.settings import DEFAULT_READERS, OcrSettings
from ocr_text.words import OcrResult, OcrWord

__all__ = [
    "DEFAULT_READERS",
    "OcrResult",
    "OcrSettings",
    "OcrWord",
    "ReaderKind",
    "ReaderUnavailable",
    "TesseractMissingError",
    "clean_words",
    "combine",
    "is_garbage",
    "load_reader",
    "min_confidence",
    "merge_words",
    "normalise_whitespace",
    "ocr_signature",
    "parse_tesseract_data",
    "prepare_for_ocr",
    "read_each",
    "read_text",
    "reader_names",
    "register",
    "tesseract_version",
    "usable_readers",
    "words_to_text",
]
