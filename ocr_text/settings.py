"""Knobs of the OCR step, shared by every reader; their signature is stored with every point."""

from __future__ import annotations

from dataclasses import dataclass

from ocr_text.preprocess import DEFAULT_SCALES

PIPELINE_VERSION = "ocr-3"
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
