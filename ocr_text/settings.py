"""Knobs of the OCR step, shared by every reader; their signature is stored with every point."""

from __future__ import annotations

from dataclasses import dataclass

from ocr_text.preprocess import DEFAULT_SCALES

PIPELINE_VERSION = "ocr-3"
READER_NAMES = ("tesseract", "ppocr")
# Chosen by measurement on ads377: the best-quality reader set whose ingest keeps >= 2 images/s on
# 2 cores (bench/results/readers.md, docs/decisions.md). Tesseract stays available (and is the
# fallback when PP-OCR cannot load); `tesseract,ppocr` reads more at about 4x the OCR time.
DEFAULT_READERS: tuple[str, ...] = ("ppocr",)


@dataclass(frozen=True)
class OcrSettings:
    """Which readers run and how; part of the pipeline version stored with every point."""

    readers: tuple[str, ...] = DEFAULT_READERS
    # Tesseract
    lang: str = "eng"
    psm: int = 11
    min_confidence: float = 60.0
    # One Tesseract pass per short-side size; the passes are merged word by word by confidence.
    scales: tuple[int, ...] = DEFAULT_SCALES
    timeout_s: float = 120.0
    # Images where the passes keep fewer words than this get two more (Otsu-binarised, and inverted
    # for light-on-dark text, at the first scale), merged likewise. 0 = never.
    retry_below_words: int = 0
    # PP-OCR
    ppocr_min_confidence: float = 60.0
    ppocr_det_side: int = 960  # detection input: longest side scaled down to this many px
    ppocr_models: str | None = None  # bundled model name (v6-tiny, v6-small, v5) or a folder; None = default

    def tesseract_signature(self) -> str:
        retry = f":retry{self.retry_below_words}" if self.retry_below_words else ""
        return (
            f"tesseract:{self.lang}:psm{self.psm}:conf{self.min_confidence:g}"
            + f":sides{'+'.join(map(str, self.scales))}"
            + retry
        )

    def ppocr_signature(self) -> str:
        from ocr_text.readers.ppocr import model_id

        models = model_id(self.ppocr_models)
        return f"ppocr:{models}:conf{self.ppocr_min_confidence:g}:det{self.ppocr_det_side}"

    def signature(self) -> str:
        """Short text that changes whenever a setting changes the OCR output."""
        parts = {"tesseract": self.tesseract_signature, "ppocr": self.ppocr_signature}
        return PIPELINE_VERSION + "|" + "|".join(parts[name]() for name in self.readers)

    def min_confidence_of(self, reader: str) -> float:
        """The confidence below which a reader's words are dropped."""
        return self.ppocr_min_confidence if reader == "ppocr" else self.min_confidence
