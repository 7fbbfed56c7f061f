"""Without a query: the images matching the filters in the order of an indexed field, and how many
images match a filter."""

from __future__ import annotations

import time
from collections.abc import Sequence

from engine.filters import Clause
from engine.search.encoding import elapsed_ms
from engine.search.results import Hit, SearchResponse
from engine.search.snippets import SNIPPET_CHARS
from engine.store import Store

EXACT_TOTAL_UP_TO = 10_000  # a filtered total above this (by estimate) is given as the estimate


def matching_total(store: Store, where: Sequence[Clause]) -> tuple[int, bool]:
    """How many images match: Qdrant's estimate from its payload indexes (microseconds), made exact
    when it is small enough to count cheaply (an exact count of a broad filter costs as much as the
    search itself: bench/results/filters.md); (count, exact)."""
    estimate = store.count(where=where, exact=False)
    if estimate <= EXACT_TOTAL_UP_TO:
        return store.count(where=where), True
    return estimate, False


def browse(
    store: Store, where: Sequence[Clause] = (), sort: str = "ingested_at", descending: bool = True,
    k: int = 10, offset: int = 0,
) -> SearchResponse:  # fmt: skip
    """No query: the images matching `where`, ordered by an indexed field (newest first by default)."""
    start = time.perf_counter()
    records = store.browse(where, sort, descending, k, offset)
    hits = [
        Hit(
            id=pid,
            rank=rank,
            score=0.0,
            paths=p.get("paths", []),
            channels={},
            snippet=(p.get("ocr_text") or "").split("\n", 1)[0][:SNIPPET_CHARS],
            matched_terms=[],
            ocr_text=p.get("ocr_text", ""),
            width=p.get("width"),
            height=p.get("height"),
        )
        for rank, (pid, p) in enumerate(records, offset + 1)
    ]
    notes = [f"no query: browsing by {sort}, {'descending' if descending else 'ascending'}"]
    total, exact = matching_total(store, where)
    return SearchResponse(None, "browse", [], hits, notes, {"qdrant": elapsed_ms(start)}, total, exact)
