"""Statistics of a collection (counts, distributions, models, fusion in use) and its groups of
same-creative duplicates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from engine.channels import fused_names
from engine.models.creative import THRESHOLD
from engine.schema import CREATIVE_CHANNEL
from engine.settings import TUNABLE, TUNED_FUSION, Settings
from engine.store import ChannelQuery, Store

STATS_FIELDS = ["format", "width", "height", "bytes", "ocr_text", "ocr_confidence", "has_text"]
PIXEL_BUCKETS = [(0.25, "< 0.25 MP"), (0.5, "0.25-0.5 MP"), (1, "0.5-1 MP"), (2, "1-2 MP"), (4, "2-4 MP")]
BYTE_BUCKETS = [(50, "< 50 KB"), (200, "50-200 KB"), (1024, "0.2-1 MB")]
WORD_BUCKETS = [(0, "no text"), (5, "1-5 words"), (20, "6-20"), (50, "21-50"), (100, "51-100")]
CONFIDENCE_BUCKETS = [(b + 10, f"{b}-{b + 10}") for b in range(0, 90, 10)]
DUPLICATE_NEIGHBOURS = 50  # copies looked for per image when grouping duplicates
STATS_GROUPS = 20  # largest duplicate groups listed in the statistics
# Grouping duplicates takes one creative-channel search per image (~5 ms each): the statistics do it
# up to this many images (~10 min at most), above it they say so rather than take hours.
STATS_DUPLICATES_MAX = 100_000


def _bucket(value: float, buckets: list[tuple[float, str]], last: str) -> str:
    return next((label for limit, label in buckets if value <= limit), last)


def collection_stats(store: Store, settings: Settings, find_groups: Callable[[], list[list[str]]]) -> dict:
    """Counts and distributions over the whole collection; `find_groups` gives its duplicate groups (run
    only up to STATS_DUPLICATES_MAX images)."""
    meta = store.metadata()
    formats, pixels, sizes, words, confidence = Counter(), Counter(), Counter(), Counter(), Counter()
    total = with_text = 0
    for _, p in store.scroll(batch=512, fields=STATS_FIELDS):
        total += 1
        formats[p.get("format") or "?"] += 1
        pixels[_bucket((p.get("width", 0) * p.get("height", 0)) / 1e6, PIXEL_BUCKETS, "> 4 MP")] += 1
        sizes[_bucket(p.get("bytes", 0) / 1024, BYTE_BUCKETS, "> 1 MB")] += 1
        words[_bucket(len((p.get("ocr_text") or "").split()), WORD_BUCKETS, "> 100")] += 1
        if p.get("has_text"):
            with_text += 1
            confidence[_bucket(p.get("ocr_confidence", 0), CONFIDENCE_BUCKETS, "90-100")] += 1
    models = meta.get("models") or {}
    return {
        "collection": settings.collection,
        "backend": "qdrant-server" if settings.qdrant_url else "embedded",
        "images": total,
        "with_text": with_text,
        "without_text": total - with_text,
        "ocr_coverage": round(with_text / total, 4) if total else 0.0,
        "with_image_vector": store.count("image"),
        "formats": dict(formats.most_common()),
        "pixel_sizes": _ordered(pixels, [label for _, label in PIXEL_BUCKETS] + ["> 4 MP"]),
        "file_sizes": _ordered(sizes, [label for _, label in BYTE_BUCKETS] + ["> 1 MB"]),
        "text_words": _ordered(words, [label for _, label in WORD_BUCKETS] + ["> 100"]),
        "ocr_confidence": _ordered(confidence, [label for _, label in CONFIDENCE_BUCKETS] + ["90-100"]),
        "with_creative_vector": store.count(CREATIVE_CHANNEL),
        "duplicates": duplicate_stats(store, total, find_groups),
        "visual": bool(meta.get("visual")),
        "channels": {c: (c != "image" or bool(meta.get("visual"))) for c in fused_names()},
        "models": models,
        "pipeline": meta.get("pipeline"),
        "fusion": fusion_in_use(settings, meta),
    }


def fusion_in_use(settings: Settings, meta: dict) -> dict:
    """The fusion settings search uses, and the `adsearch tune --save` record they came from."""
    used = settings.with_tuned(tuned := meta.get(TUNED_FUSION)).model_dump()
    applied = tuned and any(used[f] == tuned.get(f) for f in TUNABLE)
    return {**{f: used[f] for f in TUNABLE}, "tuned": tuned if applied else None}


def duplicate_groups(store: Store, rrf_k: int, neighbours: int = DUPLICATE_NEIGHBOURS) -> list[list[str]]:
    """Groups of 2+ images that are the same creative (creative vectors at or above the
    engine.models.creative threshold, linked transitively), largest first, ids sorted in each: one
    creative-channel search per image, at most `neighbours` copies each."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for pid, vector in store.dense_vectors(CREATIVE_CHANNEL):  # points stored before it lack it
        query = ChannelQuery(CREATIVE_CHANNEL, vector)
        result = store.search([query], [1.0], neighbours + 1, 0, neighbours + 1, rrf_k)
        for hit in result.fused:
            if hit.id != pid and hit.score >= THRESHOLD:
                parent[root(hit.id)] = root(pid)
    groups: dict[str, list[str]] = {}
    for pid in list(parent):
        groups.setdefault(root(pid), []).append(pid)
    found = [sorted(g) for g in groups.values() if len(g) > 1]
    return sorted(found, key=lambda g: (-len(g), g[0]))


def duplicate_stats(store: Store, images: int, find_groups: Callable[[], list[list[str]]]) -> dict:
    """The duplicate groups part of the statistics: counts and the largest groups, each with an example."""
    if images > STATS_DUPLICATES_MAX:
        return {
            "threshold": THRESHOLD,
            "groups": None,
            "images_in_groups": None,
            "largest": [],
            "skipped": f"not counted above {STATS_DUPLICATES_MAX:,} images (one search per image); "
            "one image's copies: `adsearch search --image FILE --mode duplicate` or its page",
        }
    groups = find_groups()
    payloads = store.retrieve([g[0] for g in groups[:STATS_GROUPS]])
    return {
        "threshold": THRESHOLD,
        "groups": len(groups),
        "images_in_groups": sum(len(g) for g in groups),
        "largest": [
            {"size": len(g), "ids": g, "example": (payloads.get(g[0], {}).get("paths") or [None])[0]}
            for g in groups[:STATS_GROUPS]
        ],
    }


def _ordered(counter: Counter, labels: list[str]) -> dict[str, int]:
    return {label: counter.get(label, 0) for label in labels}
