"""How ClientStore lays out its collection on a Qdrant server: vectors, quantisation, sharding, the
vectors added to an older collection, and the payload indexes."""

from __future__ import annotations

import warnings

from engine.schema import SPARSE_CHANNEL
from engine.store.base import INDEX_PARAMS, INDEX_TYPES, QUANTILE, check_dims, missing_vectors, payload_links


class ClientLayout:
    """ClientStore's collection layout (a part of ClientStore, client.py: uses its `client`,
    `models`, `collection`, `quantize`, `shard_number`, `replication_factor` and `_exists`)."""

    def ensure_collection(self, dims: dict[str, int]) -> None:
        existing = self.dims()
        m = self.models
        if existing is not None:
            check_dims(existing, dims, self.collection)
            for name, size in missing_vectors(existing, dims).items():  # made before this vector existed
                dense = m.DenseVectorConfig(size=size, distance=m.Distance.COSINE)
                config = m.DenseVectorNameConfig(dense=dense)
                self.client.create_vector_name(self.collection, name, config, wait=True)
            return
        quantized = None
        if self.quantize:
            scalar = m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=QUANTILE, always_ram=True)
            quantized = m.ScalarQuantization(scalar=scalar)
        self.client.create_collection(
            self.collection,
            vectors_config={
                n: m.VectorParams(size=s, distance=m.Distance.COSINE, on_disk=self.quantize or None)
                for n, s in dims.items()
            },
            sparse_vectors_config={SPARSE_CHANNEL: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            quantization_config=quantized,  # every dense vector, also one added later (creative)
            shard_number=self.shard_number,
            replication_factor=self.replication_factor,
            metadata={"dims": dims, "quantization": "int8" if self.quantize else None},
        )

    def dims(self) -> dict[str, int] | None:
        if not self._exists():
            return None
        vectors = self.client.get_collection(self.collection).config.params.vectors
        return {name: params.size for name, params in vectors.items()}

    def ensure_indexes(self, fields: dict[str, str]) -> None:
        if not self._exists():
            return
        for name, kind in fields.items():
            index = self._index_schema(name, kind)
            if index is None:
                continue
            with warnings.catch_warnings():  # local mode: "indexes have no effect here" (harmless)
                warnings.simplefilter("ignore", UserWarning)
                self.client.create_payload_index(
                    self.collection, field_name=name, field_schema=index, wait=True
                )

    def _index_schema(self, name: str, kind: str):
        """The payload index of a field of this engine.filters type (None: not indexed)."""
        m = self.models
        if kind == "text":  # words, lower-cased, with positions for phrases
            return m.TextIndexParams(
                type="text", tokenizer=m.TokenizerType.WORD, lowercase=True, phrase_matching=True
            )
        if kind not in INDEX_TYPES:
            return None
        if payload_links(name, kind):
            return getattr(m.PayloadSchemaType, INDEX_TYPES[kind].upper())
        extra = {"lookup": True, "range": True} if kind == "integer" else {}
        return getattr(m, INDEX_PARAMS[kind])(type=INDEX_TYPES[kind].lower(), enable_hnsw=False, **extra)
