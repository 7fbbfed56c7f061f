"""Cleaning of OCR output: drop low-confidence words and OCR garbage, tidy whitespace."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocr_text.words import OcrWord

_EDGE_NOISE = "|~_`'\"^*•·°«»<>[](){}=+\\/,;:"
_SINGLE_CHARS_KEPT = set("aAI&$%€£@#!?") | set("0123456789")
_VOWELS = set("aeiouyAEIOUY")
_REPEATED = re.compile(r"(.)\1\1")
_WHITESPACE = re.compile(r"[ \t\f\v\u00a0]+")


def is_garbage(token: str) -> bool:
    """True for tokens that are OCR noise rather than words: stray marks, repeated strokes, no letters."""
    core = token.strip(_EDGE_NOISE)
    if not core:
        return True
    alnum = sum(ch.isalnum() for ch in core)
    if alnum == 0:
        return True
    if len(core) == 1:
        return core not in _SINGLE_CHARS_KEPT
    if alnum / len(core) < 0.5:
        return True
    letters = [ch for ch in core if ch.isalpha()]
    if letters and _REPEATED.search(core) and not core.isdigit() and len(set(core.lower())) <= 2:
        return True
    # Long runs of consonants ("rnrnmw") are how Tesseract reads textures and photos.
    return len(letters) >= 6 and not any(ch in _VOWELS for ch in letters)


def clean_words(words: Iterable[OcrWord], min_confidence: float) -> list[OcrWord]:
    """Keep words at or above `min_confidence` that are not garbage."""
    return [w for w in words if w.confidence >= min_confidence and not is_garbage(w.text)]


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces, strip each line and drop empty lines; case is preserved."""
    lines = (_WHITESPACE.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def words_to_text(words: Iterable[OcrWord]) -> str:
    """Join words into text: words of one Tesseract line by spaces, lines by newlines."""
    lines: dict[tuple[int, int, int], list[str]] = {}
    for word in words:
        lines.setdefault(word.line_key, []).append(word.text)
    return normalise_whitespace("\n".join(" ".join(parts) for parts in lines.values()))
