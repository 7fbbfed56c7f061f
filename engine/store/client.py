"""`ClientStore`: the collection on a Qdrant server or cluster, through qdrant-client (tests drive
it through qdrant-client's local mode, which speaks the same client API). This module holds the
connection and point I/O; the collection layout is client_layout.py's, the queries
client_queries.py's."""

from __future__ import annotations

from collections.abc import Iterator

from engine.errors import StoreError
from engine.schema import SparseVec
from engine.settings import Settings
from engine.store.backends import StoreBackend
from engine.store.base import HNSW_EF, OVERSAMPLING, PointData, Store
from engine.store.client_layout import ClientLayout
from engine.store.client_queries import ClientQueries


class ClientStore(ClientLayout, ClientQueries, Store):
    """A collection behind qdrant-client: a Qdrant server/cluster, or qdrant-client's local mode.

    With `quantize`, a new collection is laid out as EdgeStore lays out its own: int8 dense vectors
    in RAM, float32 originals on disk, searches rescored with the originals (qdrant-client's local
    mode accepts the settings and searches exactly)."""

    def __init__(
        self,
        client,
        collection: str,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        quantize: bool = True,
    ):
        from qdrant_client import models

        self.client = client
        self.models = models
        self.collection = collection
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self.quantize = quantize
        self.oversampling = OVERSAMPLING
        self.hnsw_ef: int | None = HNSW_EF

    @classmethod
    def from_settings(cls, client, settings: Settings) -> ClientStore:
        """The store for `settings.collection`, created with the settings' sharding and layout when new."""
        store = cls(
            client, settings.collection, settings.shard_number, settings.replication_factor, settings.quantize
        )
        store.hnsw_ef = settings.hnsw_ef
        return store

    def _exists(self) -> bool:
        return self.client.collection_exists(self.collection)

    def _vector(self, value):
        if isinstance(value, SparseVec):
            return self.models.SparseVector(indices=value.indices, values=value.values)
        return value

    def upsert(self, points: list[PointData]) -> None:
        if points:
            self.client.upsert(
                self.collection,
                points=[
                    self.models.PointStruct(
                        id=p.id, vector={k: self._vector(v) for k, v in p.vectors.items()}, payload=p.payload
                    )
                    for p in points
                ],
                wait=True,
            )

    def _records(self, ids: list[str], with_payload: bool, with_vector: bool) -> list:
        if not ids or not self._exists():
            return []
        return self.client.retrieve(self.collection, ids, with_payload=with_payload, with_vectors=with_vector)

    def set_payload(self, point_id: str, payload: dict) -> None:
        self.client.set_payload(self.collection, payload=payload, points=[point_id], wait=True)

    def delete(self, ids: list[str]) -> None:
        if ids:
            self.client.delete(
                self.collection, points_selector=self.models.PointIdsList(points=ids), wait=True
            )

    def _scroll(self, batch: int, fields: list[str] | None, with_vector: bool, where=()) -> Iterator:
        if not self._exists():
            return
        flt = self._filter(where)
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection,
                scroll_filter=flt,
                limit=batch,
                offset=offset,
                with_payload=fields or True,
                with_vectors=with_vector,
            )
            yield from records
            if offset is None:
                return

    def metadata(self) -> dict:
        if not self._exists():
            return {}
        return dict(self.client.get_collection(self.collection).config.metadata or {})

    def update_metadata(self, values: dict) -> None:
        self.client.update_collection(self.collection, metadata=values)

    def close(self) -> None:
        self.client.close()


def connect(settings: Settings) -> ClientStore:
    """The store on the Qdrant server at `settings.qdrant_url`; StoreError when it cannot be reached."""
    from qdrant_client import QdrantClient

    try:
        client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=30)
        client.get_collections()
    except Exception as exc:  # noqa: BLE001 (any connection failure gets the same clear message)
        raise StoreError(f"cannot reach Qdrant at {settings.qdrant_url}: {exc}") from exc
    return ClientStore.from_settings(client, settings)


# every Qdrant URL (a backend registered later may take a scheme of its own)
BACKEND = StoreBackend("qdrant-server", handles=lambda settings: bool(settings.qdrant_url), open=connect)
