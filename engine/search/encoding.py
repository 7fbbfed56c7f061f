"""Query encoding: one vector per channel, the channels encoded concurrently, text queries cached
(QueryCache: its hits and misses are counted, and /metrics shows them)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from PIL import Image

from engine.channels import channel, fused_names
from engine.errors import SearchError
from engine.store import ChannelQuery

if TYPE_CHECKING:
    from engine.models.encoders import Encoders

TEXT_CACHE = 4096  # text queries repeat (paging, popular queries, evaluation sweeps): each embedded once


def elapsed_ms(start: float) -> float:
    """Milliseconds since `start` (time.perf_counter), as timings report them."""
    return round((time.perf_counter() - start) * 1000, 3)


class QueryCache:
    """Text queries' channel vectors, the least recently used dropped past `capacity`, with hits and
    misses counted over the cache's whole life. A Library keeps one while it is open and empties it
    whenever its collection changes."""

    def __init__(self, capacity: int = TEXT_CACHE):
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple[str, str], ChannelQuery | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], compute: Callable[[], ChannelQuery | None]) -> ChannelQuery | None:
        """The cached value for `key`, or `compute()`'s, kept (two threads missing at once both compute)."""
        with self._lock:
            if key in self._items:
                self.hits += 1
                self._items.move_to_end(key)
                return self._items[key]
            self.misses += 1
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class QueryEncoder:
    """Encodes queries for the channels with one set of encoders."""

    def __init__(self, encoders: Encoders, cache: QueryCache | None = None):
        self.encoders = encoders
        self.cache = cache if cache is not None else QueryCache()
        self._pool = ThreadPoolExecutor(max_workers=len(fused_names()), thread_name_prefix="encode")

    def embed(
        self, channels: list[str], text: str, image: Image.Image | None, timings: dict[str, float]
    ) -> list[ChannelQuery]:
        """One vector per channel. The model channels run concurrently (ONNX Runtime and torch release
        the GIL), so a hybrid query costs about its slowest encoder, not the sum."""

        def embed(name: str) -> ChannelQuery | None:
            start = time.perf_counter()
            if image is not None and channel(name).reads_query_image:
                vector = channel(name).encode_query(self.encoders, text, image)
                query = ChannelQuery(name, vector) if vector is not None else None
            else:
                query = self.cache.get((name, text), lambda: self._embed_text(name, text))
            timings[f"encode_{name}"] = elapsed_ms(start)
            return query

        start = time.perf_counter()
        queries = list(self._pool.map(embed, channels)) if len(channels) > 1 else [embed(c) for c in channels]
        timings["encode"] = elapsed_ms(start)
        queries = [q for q in queries if q is not None]
        if not queries:
            raise SearchError("the query has no searchable words for this mode")
        return queries

    def _embed_text(self, name: str, text: str) -> ChannelQuery | None:
        """One channel's vector for a text query; None when it has nothing to match (BM25: only stopwords)."""
        vector = channel(name).encode_query(self.encoders, text, None)
        return ChannelQuery(name, vector) if vector is not None else None
