"""Merging the words of several OCR readings of one image (passes of one reader, or several readers).

Where two words' boxes overlap, the more confident reading wins; words only one reading saw are kept;
lines are then rebuilt from the boxes in reading order (top to bottom, left to right), since every
reading numbers its lines its own way. Each word keeps the name of the reader that produced it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ocr_text.words import OcrWord

_BAND = 64  # px: words are indexed by the horizontal bands their boxes touch
OVERLAP = 0.5  # boxes sharing more than this share of the smaller box are the same word


def _bands(word: OcrWord) -> range:
    """The horizontal bands of _BAND px a word's box touches (the merge's spatial index)."""
    return range(word.top // _BAND, word.bottom // _BAND + 1)


def overlap(a: OcrWord, b: OcrWord) -> float:
    """Intersection over the smaller box: 1 when one word's box lies inside the other's."""
    width = min(a.right, b.right) - max(a.left, b.left)
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / max(1, min(a.width * a.height, b.width * b.height))


def deduplicate(readings: Iterable[list[OcrWord]]) -> list[OcrWord]:
    """One word per place: of overlapping words the most confident wins (the earlier reading on a
    tie); words that overlap nothing are kept. Order: first sighting."""
    merged: dict[int, OcrWord] = {}
    bands: dict[int, set[int]] = {}  # band -> keys of kept words touching it
    for number, word in enumerate(w for words in readings for w in words):
        nearby = set().union(*(bands.get(b, ()) for b in _bands(word)))
        rivals = [key for key in nearby if overlap(merged[key], word) > OVERLAP]
        if rivals and word.confidence <= max(merged[key].confidence for key in rivals):
            continue
        for key in rivals:
            for b in _bands(merged.pop(key)):
                bands[b].discard(key)
        merged[number] = word
        for b in _bands(word):
            bands.setdefault(b, set()).add(number)
    return list(merged.values())


def rebuild_lines(words: Iterable[OcrWord]) -> list[OcrWord]:
    """Words renumbered into lines in reading order: a word joins the current line when its vertical
    centre falls within that line's extent; each line is read left to right."""
    lines: list[list[OcrWord]] = []
    for word in sorted(words, key=lambda w: w.top):
        centre = word.top + word.height / 2
        line = lines[-1] if lines else None
        if line and min(w.top for w in line) <= centre <= max(w.bottom for w in line):
            line.append(word)
        else:
            lines.append([word])
    return [
        replace(word, block=0, paragraph=0, line=number)
        for number, line in enumerate(lines, 1)
        for word in sorted(line, key=lambda w: w.left)
    ]


def merge_words(readings: list[list[OcrWord]]) -> list[OcrWord]:
    """Several readings of one image merged into one list of words with lines in reading order."""
    return rebuild_lines(deduplicate(readings))
