"""Feedback: "more like these, unlike those" image ids turn each channel's query into a recommend
query (Qdrant's best-score strategy) with the examples' stored vectors in that channel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from engine.errors import SearchError
from engine.search.request import MAX_EXAMPLES
from engine.store import ChannelQuery, Store

MAX_TOGETHER = 2 * MAX_EXAMPLES  # positive and negative together


def with_examples(
    store: Store, queries: list[ChannelQuery], positive: Sequence[str], negative: Sequence[str]
) -> list[ChannelQuery]:
    """Each channel's query with the stored vectors of the example images in that channel."""
    if not positive and not negative:
        return queries
    if len(positive) + len(negative) > MAX_TOGETHER:
        raise SearchError(f"at most {MAX_TOGETHER} example images (positive and negative together)")
    vectors = {}
    for image_id in dict.fromkeys([*positive, *negative]):
        stored = store.vectors(image_id)
        if stored is None:
            raise SearchError(f"no image with id {image_id} (given as a feedback example)")
        vectors[image_id] = stored
    return [
        replace(
            q,
            positives=tuple(vectors[i][q.channel] for i in positive if q.channel in vectors[i]),
            negatives=tuple(vectors[i][q.channel] for i in negative if q.channel in vectors[i]),
        )
        for q in queries
    ]
