"""How EdgeStore lays out its collection: the shard's vectors, quantisation and HNSW graph, the
vectors added to an older collection, and the payload indexes."""

from __future__ import annotations

import os

from engine.schema import SPARSE_CHANNEL
from engine.store.base import (
    INDEX_PARAMS,
    INDEX_TYPES,
    QUANTILE,
    check_dims,
    missing_vectors,
    payload_links,
)


class EdgeLayout:
    """EdgeStore's collection layout (a part of EdgeStore, edge.py: uses its `qe`, `shard`, `path`,
    `quantize`, `m`, `ef_construct`, `indexing_threshold_kb`, `_require` and metadata)."""

    def ensure_collection(self, dims: dict[str, int]) -> None:
        existing = self.dims()
        qe = self.qe
        if existing is not None:
            check_dims(existing, dims, self.collection)
            added = missing_vectors(existing, dims)
            for name, size in added.items():  # a collection made before this vector existed
                self._require().update(qe.UpdateOperation.create_dense_vector(name, size, qe.Distance.Cosine))
            if added:
                self.update_metadata({"dims": {**existing, **added}})
            return
        self.shard = qe.EdgeShard.create(str(self.path), self._config(dims))
        self.update_metadata({"dims": dims, "quantization": "int8" if self.quantize else None})

    def _config(self, dims: dict[str, int]):
        """A new shard's layout: float32 originals on disk and int8 copies in RAM when quantised."""
        qe = self.qe
        quantized = None
        if self.quantize:
            quantized = qe.ScalarQuantizationConfig(
                qe.ScalarType.Int8, quantile=QUANTILE, memory=qe.Memory.Pinned
            )
        originals = qe.Memory.Cold if self.quantize else None
        return qe.EdgeConfig(
            vectors={
                name: qe.EdgeVectorParams(size=size, distance=qe.Distance.Cosine, memory=originals)
                for name, size in dims.items()
            },
            sparse_vectors={SPARSE_CHANNEL: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            quantization_config=quantized,  # every dense vector, also one added later (creative)
            # Qdrant's defaults, but every core builds the graphs: `optimize` runs when an ingest has
            # finished writing, and auto leaves one of 2 cores idle (index build 1.3x faster on 2)
            hnsw_config=qe.HnswIndexConfig(
                m=self.m,
                ef_construct=self.ef_construct,
                full_scan_threshold=10_000,
                max_indexing_threads=os.cpu_count() or 0,
            ),  # fmt: skip
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb),
        )

    def dims(self) -> dict[str, int] | None:
        return self.metadata().get("dims") if self.shard is not None else None

    def ensure_indexes(self, fields: dict[str, str]) -> None:
        done = self.metadata().get("indexes", {})
        todo = {name: kind for name, kind in fields.items() if done.get(name) != kind and kind in INDEX_TYPES}
        for name, kind in todo.items():
            self._require().update(
                self.qe.UpdateOperation.create_field_index(name, self._index_schema(name, kind))
            )
        if todo:
            self.update_metadata({"indexes": {**done, **todo}})

    def _index_schema(self, name: str, kind: str):
        """The payload index of a field of this engine.filters type."""
        qe = self.qe
        if kind == "text":  # words, lower-cased, with positions for phrases
            return qe.TextIndexParams(tokenizer=qe.TokenizerType.Word, lowercase=True, phrase_matching=True)
        if payload_links(name, kind):
            return getattr(qe.PayloadSchemaType, INDEX_TYPES[kind])
        if kind == "integer":
            return qe.IntegerIndexParams(lookup=True, range=True, enable_hnsw=False)
        return getattr(qe, INDEX_PARAMS[kind])(enable_hnsw=False)
