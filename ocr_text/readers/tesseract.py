"""Tesseract (through pytesseract): one pass per scale, merged word by word, boxes in original pixels."""

from __future__ import annotations

import os
import shutil
from functools import cache

from PIL import Image

from ocr_text.clean import clean_words
from ocr_text.merge import merge_words
from ocr_text.preprocess import binarise, prepare_for_ocr, to_greyscale
from ocr_text.readers.base import ReaderKind
from ocr_text.settings import OcrSettings
from ocr_text.words import OcrWord

# Tesseract's OpenMP threads oversubscribe the cores when several OCR workers run at once:
# one thread per process is faster in total. Callers may still override it in the environment.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import pytesseract  # noqa: E402  (must see OMP_THREAD_LIMIT)


class TesseractMissingError(RuntimeError):
    """Tesseract is not installed or not on PATH."""


@cache
def tesseract_version() -> str:
    """Version of the Tesseract binary, or raise TesseractMissingError with the package to install."""
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise TesseractMissingError(
            "Tesseract is not installed: install the Debian/Ubuntu package 'tesseract-ocr' "
            "(apt-get install tesseract-ocr) or put 'tesseract' on PATH"
        )
    return str(pytesseract.get_tesseract_version())


def parse_tesseract_data(data: dict[str, list], scale: float = 1.0) -> list[OcrWord]:
    """Turn pytesseract's `image_to_data` dict into words, boxes mapped back by 1/`scale`."""
    words = []
    for i, text in enumerate(data["text"]):
        text = (text or "").strip()
        confidence = float(data["conf"][i])
        if not text or confidence < 0:
            continue
        words.append(
            OcrWord(
                text=text,
                confidence=round(confidence, 2),
                left=round(int(data["left"][i]) / scale),
                top=round(int(data["top"][i]) / scale),
                width=max(1, round(int(data["width"][i]) / scale)),
                height=max(1, round(int(data["height"][i]) / scale)),
                block=int(data["block_num"][i]),
                paragraph=int(data["par_num"][i]),
                line=int(data["line_num"][i]),
            )
        )
    return words


def run_tesseract(image: Image.Image, settings: OcrSettings) -> dict[str, list]:
    """Run Tesseract on an already preprocessed image and return its word table."""
    tesseract_version()
    return pytesseract.image_to_data(
        image,
        lang=settings.lang,
        config=f"--psm {settings.psm}",
        output_type=pytesseract.Output.DICT,
        timeout=settings.timeout_s,
    )


class TesseractReader:
    """Greyscale, one pass per short-side scale (contrast stretched), passes merged by confidence;
    optionally two binarised retry passes when few words survive cleaning."""

    name = "tesseract"

    def __init__(self, settings: OcrSettings):
        tesseract_version()
        self.settings = settings

    def read(self, image: Image.Image) -> list[OcrWord]:
        """Every word Tesseract reads in the image (uncleaned), in original-image pixels."""
        settings = self.settings
        grey = to_greyscale(image)
        inputs = [prepare_for_ocr(grey, short_side) for short_side in settings.scales]
        passes = [self._pass(prepared, scale) for prepared, scale in inputs]
        words = merge_words(passes) if len(passes) > 1 else passes[0]
        if len(clean_words(words, settings.min_confidence)) < settings.retry_below_words:
            prepared, scale = inputs[0]
            passes += [self._pass(binarise(prepared, invert), scale) for invert in (False, True)]
            words = merge_words(passes)
        return words

    def _pass(self, prepared: Image.Image, scale: float) -> list[OcrWord]:
        return parse_tesseract_data(run_tesseract(prepared, self.settings), scale)


def _signature(settings: OcrSettings) -> str:
    retry = f":retry{settings.retry_below_words}" if settings.retry_below_words else ""
    sides = "+".join(map(str, settings.scales))
    return f"tesseract:{settings.lang}:psm{settings.psm}:conf{settings.min_confidence:g}:sides{sides}{retry}"


KIND = ReaderKind("tesseract", TesseractReader, _signature, lambda settings: settings.min_confidence)
