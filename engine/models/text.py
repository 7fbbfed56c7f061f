"""Light text resources shared by the encoders and search (no model imports here)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

BM25_RESOURCES = Path(__file__).parent.parent / "resources" / "bm25"


@cache
def english_stopwords() -> frozenset[str]:
    """The shipped English stopword list (the one fastembed's BM25 uses)."""
    return frozenset((BM25_RESOURCES / "english.txt").read_text().split())
