"""The collection schema and every Qdrant call, for two backends with one interface.

- `EdgeStore` (default, embedded): Qdrant Edge, the Qdrant engine in-process, on a local folder.
- `ClientStore`: qdrant-client against a Qdrant server or cluster (`--qdrant-url`); tests drive it
  through qdrant-client's local mode, which speaks the same client API.

Schema (one point per image): dense `image` (CLIP) and `text` (MiniLM) vectors, cosine; sparse
`keywords` (BM25) with Qdrant's IDF modifier; the payload described in docs/architecture.md.
Layout (`Settings.quantize`, on by default for new collections): int8 dense vectors in RAM, float32
originals on disk, rescored search; the embedded store keeps the heavy payload fields (word boxes,
raw OCR text, pipeline record) in a sidecar file beside the shard (sidecar.py); see docs/scaling.md.
One module per backend behind `Store` (base.py): edge.py, client.py.
"""

from __future__ import annotations

from engine.config import Settings
from engine.errors import StoreError
from engine.schema import DENSE_CHANNELS, SPARSE_CHANNEL, SparseVec, point_id
from engine.store.base import HIT_PAYLOAD_EXCLUDE, ChannelQuery, PointData, ScoredHit, SearchResult, Store
from engine.store.client import ClientStore
from engine.store.edge import EdgeStore

__all__ = [
    "DENSE_CHANNELS", "HIT_PAYLOAD_EXCLUDE", "SPARSE_CHANNEL", "ChannelQuery", "ClientStore", "EdgeStore",
    "PointData", "ScoredHit", "SearchResult", "SparseVec", "Store", "open_store", "point_id",
]  # fmt: skip


def open_store(settings: Settings) -> Store:
    """The store the settings name: a Qdrant server when `qdrant_url` is set, else the embedded one."""
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        try:
            client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=30)
            client.get_collections()
        except Exception as exc:  # noqa: BLE001 (any connection failure gets the same clear message)
            raise StoreError(f"cannot reach Qdrant at {settings.qdrant_url}: {exc}") from exc
        return ClientStore.from_settings(client, settings)
    store = EdgeStore(settings.db, settings.collection, quantize=settings.quantize)
    store.hnsw_ef = settings.hnsw_ef
    return store
