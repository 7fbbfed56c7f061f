"""Running Tesseract (through pytesseract) and parsing its word boxes."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from functools import cache

from PIL import Image

from ocr_text.clean import clean_words, words_to_text
from ocr_text.preprocess import DEFAULT_SCALES, binarise, prepare_for_ocr, to_greyscale

# Tesseract's OpenMP threads oversubscribe the cores when several OCR workers run at once:
# one thread per process is faster in total. Callers may still override it in the environment.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import pytesseract  # noqa: E402  (must see OMP_THREAD_LIMIT)

PIPELINE_VERSION = "ocr-2"


class TesseractMissingError(RuntimeError):
    """Tesseract is not installed or not on PATH."""


@dataclass(frozen=True)
class OcrSettings:
    """Knobs of the OCR step; part of the pipeline version stored with every point."""

    lang: str = "eng"
    psm: int = 11
    min_confidence: float = 60.0
    # One Tesseract pass per short-side size; the passes are merged word by word by confidence.
    scales: tuple[int, ...] = DEFAULT_SCALES
    timeout_s: float = 120.0
    # Images where the passes keep fewer words than this get two more (Otsu-binarised, and inverted
    # for light-on-dark text, at the first scale), merged likewise. 0 = never.
    retry_below_words: int = 0

    def signature(self) -> str:
        """Short text that changes whenever a setting changes the OCR output."""
        retry = f":retry{self.retry_below_words}" if self.retry_below_words else ""
        return (
            f"{PIPELINE_VERSION}:{self.lang}:psm{self.psm}:conf{self.min_confidence:g}"
            + f":sides{'+'.join(map(str, self.scales))}"
            + retry
        )


@dataclass(frozen=True)
class OcrWord:
    """One word read by Tesseract, with its box in the original image's pixel coordinates."""

    text: str
    confidence: float
    left: int
    top: int
    width: int
    height: int
    block: int = 0
    paragraph: int = 0
    line: int = 0

    @property
    def line_key(self) -> tuple[int, int, int]:
        return (self.block, self.paragraph, self.line)


@dataclass
class OcrResult:
    """Cleaned text plus the words it was made of; `raw_text` is Tesseract's text before cleaning."""

    text: str
    raw_text: str
    words: list[OcrWord] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        """Mean confidence (0-100) of the kept words, 0 when there are none."""
        return sum(w.confidence for w in self.words) / len(self.words) if self.words else 0.0

    def words_as_dicts(self) -> list[dict]:
        return [asdict(w) for w in self.words]


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


_BAND = 64


def _bands(word: OcrWord) -> range:
    """The horizontal bands of _BAND px a word's box touches (merge_passes' index)."""
    return range(word.top // _BAND, (word.top + word.height) // _BAND + 1)


def _overlap(a: OcrWord, b: OcrWord) -> float:
    """Intersection over the smaller box: 1 when one word's box lies inside the other's."""
    width = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    height = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / min(a.width * a.height, b.width * b.height)


def merge_passes(passes: list[list[OcrWord]]) -> list[OcrWord]:
    """Words of several OCR passes over one image: where boxes overlap, the most confident reading
    wins; words only one pass saw are kept. Lines are then rebuilt from the boxes (passes number
    their lines differently): a word joins the line its vertical centre falls in."""
    merged: dict[int, OcrWord] = {}  # insertion order = reading order of first sighting
    bands: dict[int, set[int]] = {}  # horizontal bands of _BAND px -> keys of words touching them
    for number, word in enumerate(w for words in passes for w in words):
        nearby = set().union(*(bands.get(b, ()) for b in _bands(word)))
        rivals = [key for key in nearby if _overlap(merged[key], word) > 0.5]
        if rivals and word.confidence <= max(merged[key].confidence for key in rivals):
            continue
        for key in rivals:
            for b in _bands(merged.pop(key)):
                bands[b].discard(key)
        merged[number] = word
        for b in _bands(word):
            bands.setdefault(b, set()).add(number)
    lines: list[list[OcrWord]] = []
    for word in sorted(merged.values(), key=lambda w: w.top):
        centre = word.top + word.height / 2
        line = lines[-1] if lines else None
        if line and min(w.top for w in line) <= centre <= max(w.top + w.height for w in line):
            line.append(word)
        else:
            lines.append([word])
    return [
        replace(word, block=0, paragraph=0, line=number)
        for number, line in enumerate(lines, 1)
        for word in sorted(line, key=lambda w: w.left)
    ]


def read_text(image: Image.Image, settings: OcrSettings | None = None) -> OcrResult:
    """Preprocess, run Tesseract once per scale, merge, clean: the whole OCR step for one image."""
    settings = settings or OcrSettings()
    grey = to_greyscale(image)
    inputs = [prepare_for_ocr(grey, short_side) for short_side in settings.scales]
    passes = [parse_tesseract_data(run_tesseract(prepared, settings), scale) for prepared, scale in inputs]
    all_words = merge_passes(passes) if len(passes) > 1 else passes[0]
    kept = clean_words(all_words, settings.min_confidence)
    if len(kept) < settings.retry_below_words:
        prepared, scale = inputs[0]
        passes += [
            parse_tesseract_data(run_tesseract(binarise(prepared, invert), settings), scale)
            for invert in (False, True)
        ]
        all_words = merge_passes(passes)
        kept = clean_words(all_words, settings.min_confidence)
    return OcrResult(text=words_to_text(kept), raw_text=words_to_text(all_words), words=kept)
