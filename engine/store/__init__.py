"""The collection schema and every Qdrant call, for two backends with one interface.

- `EdgeStore` (default, embedded): Qdrant Edge, the Qdrant engine in-process, on a local folder.
- `ClientStore`: qdrant-client against a Qdrant server or cluster (`--qdrant-url`); tests drive it
  through qdrant-client's local mode, which speaks the same client API.

Schema (one point per image): dense `image` (CLIP) and `text` (MiniLM) vectors, cosine; sparse
`keywords` (BM25) with Qdrant's IDF modifier; the payload described in docs/architecture.md.
Layout (`Settings.quantize`, on by default for new collections): int8 dense vectors in RAM, float32
originals on disk, rescored search; the embedded store keeps the heavy payload fields (word boxes,
raw OCR text, pipeline record) in a sidecar file beside the shard (sidecar.py); see docs/scaling.md.
Homes: base.py (the `Store` interface, the records, what both backends share), filter_builder.py
(--where clauses -> a Qdrant filter, for every backend), backends.py (the registry `open_store` picks
from), one module per backend with its layout and its queries beside it (edge.py, edge_layout.py,
edge_queries.py; client.py, client_layout.py, client_queries.py), sidecar.py (Edge's heavy fields).
"""

from __future__ import annotations

from engine.errors import StoreError
from engine.schema import SPARSE_CHANNEL, SparseVec, point_id
from engine.settings import Settings
from engine.store import client, edge
from engine.store.backends import (
    StoreBackend,
    backend_for,
    backend_names,
    register_backend,
    unregister_backend,
)
from engine.store.base import HIT_PAYLOAD_EXCLUDE, ChannelQuery, PointData, ScoredHit, SearchResult, Store
from engine.store.client import ClientStore
from engine.store.edge import EdgeStore
from engine.store.format import check_format

__all__ = [
    "HIT_PAYLOAD_EXCLUDE", "SPARSE_CHANNEL", "ChannelQuery", "ClientStore", "EdgeStore",
    "PointData", "ScoredHit", "SearchResult", "SparseVec", "Store", "StoreBackend", "backend_names",
    "open_store", "point_id", "register_backend", "unregister_backend",
]  # fmt: skip

for _backend in (edge.BACKEND, client.BACKEND):  # asked last to first: a later one can take settings over
    register_backend(_backend)


def open_store(settings: Settings) -> Store:
    """The store the settings name, opened by the backend that handles them (backends.py): a Qdrant
    server when `qdrant_url` is set, else the embedded one."""
    store = backend_for(settings).open(settings)
    try:
        check_format(store)
    except StoreError:
        store.close()
        raise
    return store
