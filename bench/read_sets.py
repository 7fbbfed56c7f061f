"""Two query sets over ads377 that do not come from any OCR: wording and advertisers read off the
377 images by eye (bench/querysets/ads377_read/README.md says how), turned into queries here.

- exact_wording: one query per distinct printed line; relevant (grade 1): every ad that prints it.
- brand: one query per distinct advertiser; relevant (grade 1): every ad of it.
Lines and brands are matched across ads after folding case, punctuation and spacing."""

from __future__ import annotations

import json
import re
from pathlib import Path

READINGS = Path(__file__).resolve().parent / "querysets" / "ads377_read" / "readings.jsonl"
Qrels = dict[str, dict[str, int]]


def fold(text: str) -> str:
    """Case, punctuation (apostrophes, hyphens, marks) and spacing folded: how two readings of one
    line or one name are recognised as the same."""
    text = re.sub(r"[\u2019'®™©]", "", text.lower())
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def readings(path: Path = READINGS) -> list[dict]:
    """The readings, one per ad: {"key", "brand" (or None), "lines"}."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def grouped(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], Qrels]:
    """Queries and qrels from (text, image key) pairs: one query per folded text (its first spelling
    as the query), every key that has it relevant."""
    first: dict[str, str] = {}
    keys: dict[str, dict[str, int]] = {}
    for text, key in pairs:
        folded = fold(text).replace(" ", "") if text else ""
        if folded:
            first.setdefault(folded, text.strip())
            keys.setdefault(folded, {})[key] = 1
    ids = {folded: f"{n:03d}" for n, folded in enumerate(sorted(first))}
    return {ids[f]: first[f] for f in first}, {ids[f]: keys[f] for f in first}


def read_sets(path: Path = READINGS) -> dict[str, tuple[dict[str, str], Qrels]]:
    """{"exact_wording": (queries, qrels), "brand": (queries, qrels)}."""
    ads = readings(path)
    lines = [
        (line, ad["key"]) for ad in ads for line in ad.get("lines") or [] if len(fold(line).split()) >= 2
    ]
    brands = [(ad["brand"], ad["key"]) for ad in ads if ad.get("brand")]
    return {"exact_wording": grouped(lines), "brand": grouped(brands)}
