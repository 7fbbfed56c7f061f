"""What every store backend shares: the records passed in and out, the `Store` interface the
engine uses (point ids and sparse vectors are engine.schema's), and the layout facts and helpers
both Qdrant backends use (the filter builder is filter_builder.py's)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from engine.errors import StoreError
from engine.filters import BUILTIN_FIELDS, Clause
from engine.schema import CREATIVE_CHANNEL, HEAVY_FIELDS, SPARSE_CHANNEL, SparseVec

# Dense vectors added to a collection made before them (ensure_collection adds them; points get
# them when re-ingested): the perceptual fingerprint of engine.models.creative.
ADDABLE_VECTORS = (CREATIVE_CHANNEL,)
# Heavy payload fields that search hits do not need (word boxes are fetched per image).
HIT_PAYLOAD_EXCLUDE = list(HEAVY_FIELDS)
# Payload fields the embedded store keeps beside the shard (a sidecar file) rather than in Qdrant's
# payload: read only for one image (its page, ingest's stored-OCR reuse), never filtered or sent
# with hits. In the payload the word boxes cost Edge's Python binding 3.4 ms per point to convert,
# and every payload index build reads them again for every point: at 50k points they made the
# upsert 1.5x and the index build 1.4x slower (docs/decisions.md). Stores hand back whole payloads.
SIDECAR_FIELDS = HEAVY_FIELDS
# Quantised dense vectors (int8, in RAM; originals on disk): every dense query reads this many times
# its limit from the int8 vectors and rescores them with the originals (bench/results/scale.md).
QUANTILE = 0.99
OVERSAMPLING = 2.0
# HNSW graph of a new embedded collection (Qdrant's defaults). HNSW_EF is the search beam (the
# default of Settings.hnsw_ef): Qdrant's own default, the larger of ef_construct and the candidates
# wanted (200), finds 0.966 of the exact fused top 10 at 100k points, 512 finds 0.987 for +1.7 ms a
# search; recall at a given beam falls as the collection grows (bench/results/scale.md).
HNSW_M = 16
HNSW_EF_CONSTRUCT = 100
HNSW_EF = 512


@dataclass
class PointData:
    """A point to write: id, named vectors (dense lists or SparseVec) and payload."""

    id: str
    vectors: dict[str, list[float] | SparseVec]
    payload: dict


@dataclass(frozen=True)
class ChannelQuery:
    """One channel's query vector; with examples, a recommend query (best score: like the vector
    and the positives, unlike the negatives)."""

    channel: str
    vector: list[float] | SparseVec
    positives: tuple = ()
    negatives: tuple = ()

    @property
    def recommends(self) -> bool:
        return bool(self.positives or self.negatives)


MMR_CHANNELS = ("text", "image")  # dense channels MMR can diversify in, in order of preference


def mmr_query(queries: list[ChannelQuery]) -> ChannelQuery | None:
    """The query whose channel diversification uses: near-copies of an ad read alike (text, the
    channel whose relevance to a text query is best measured), else look alike (image). None when
    only the sparse channel is searched."""
    by_channel = {q.channel: q for q in queries}
    return next((by_channel[c] for c in MMR_CHANNELS if c in by_channel), None)


@dataclass
class ScoredHit:
    id: str
    score: float
    payload: dict | None = None


@dataclass
class SearchResult:
    """Qdrant's fused ranking plus each channel's own ranking (for explanations)."""

    fused: list[ScoredHit]
    per_channel: dict[str, list[ScoredHit]] = field(default_factory=dict)


class Store(ABC):
    """What the engine needs from Qdrant. One implementation per backend."""

    collection: str

    @abstractmethod
    def ensure_collection(self, dims: dict[str, int]) -> None:
        """Create the collection with these dense sizes if missing; refuse mismatching sizes."""

    @abstractmethod
    def dims(self) -> dict[str, int] | None:
        """Dense vector sizes of the existing collection, or None when it does not exist yet."""

    @abstractmethod
    def upsert(self, points: list[PointData]) -> None: ...

    @abstractmethod
    def _records(self, ids: list[str], with_payload: bool, with_vector: bool) -> list:
        """The backend's records (with .id, .payload, .vector) for the ids that exist."""

    def retrieve(self, ids: list[str], with_vectors: bool = False) -> dict[str, dict]:
        """id -> payload for the ids that exist (plus `_vectors`: the vector names, when asked)."""
        out = {}
        for record in self._records(ids, with_payload=True, with_vector=with_vectors):
            payload = dict(record.payload or {})
            if with_vectors:
                payload["_vectors"] = sorted((record.vector or {}).keys())
            out[str(record.id)] = payload
        self._add_sidecar(out)
        return out

    def _add_sidecar(self, payloads: dict[str, dict], fields: Sequence[str] | None = None) -> None:  # noqa: B027
        """Add the fields a backend keeps outside Qdrant's payload (SIDECAR_FIELDS; only `fields`
        of them when given) to these payloads, in place. Nothing to add by default."""

    def vectors(self, point_id: str) -> dict[str, list[float] | SparseVec] | None:
        """The named vectors of one point, or None when it does not exist."""
        records = self._records([point_id], with_payload=False, with_vector=True)
        return plain_vectors(records[0].vector) if records else None

    @abstractmethod
    def set_payload(self, point_id: str, payload: dict) -> None:
        """Merge these payload keys into an existing point."""

    @abstractmethod
    def delete(self, ids: list[str]) -> None: ...

    @abstractmethod
    def count(self, with_vector: str | None = None, where: Sequence[Clause] = (), exact: bool = True) -> int:
        """Number of points (matching `where`), or of those that carry the named vector; with
        `exact=False`, Qdrant's estimate from its indexes (much faster for broad filters)."""

    @abstractmethod
    def facet(self, field: str, where: Sequence[Clause] = (), limit: int = 20) -> list[tuple[object, int]]:
        """(value, count) of a payload field over the points matching `where`, most frequent first."""

    def browse(
        self, where: Sequence[Clause], order_by: str, descending: bool, limit: int, offset: int
    ) -> list[tuple[str, dict]]:
        """(id, payload) of the points matching `where`, ordered by an indexed payload field, ties by
        id, so pages never overlap: Qdrant orders ties differently for different limits, so the
        points tied with the last one of the window are all fetched and ordered here."""
        head = self._ordered(where, order_by, descending, offset + limit)
        if len(head) == offset + limit:
            cut = head[-1][1].get(order_by)
            bound = datetime.fromisoformat(cut) if isinstance(cut, str) else cut
            tied = [*where, Clause(order_by, ">=", bound), Clause(order_by, "<=", bound)]
            head = [r for r in head if r[1].get(order_by) != cut] + self._ordered(
                tied, order_by, descending, MAX_TIES
            )
        head.sort(key=lambda r: r[0])
        head.sort(key=lambda r: r[1].get(order_by), reverse=descending)
        return head[offset : offset + limit]

    def first_by(self, where: Sequence[Clause], order_by: str, descending: bool = False) -> dict | None:
        """The payload of the first point matching `where` in `order_by` order (an indexed field), or
        None: one point read, where browse would read every point tied with it."""
        found = self._ordered(where, order_by, descending, 1)
        return found[0][1] if found else None

    @abstractmethod
    def _ordered(self, where: Sequence[Clause], order_by: str, descending: bool, limit: int) -> list:
        """The first `limit` (id, payload) matching `where` in Qdrant's order of `order_by`."""

    @abstractmethod
    def ensure_indexes(self, fields: dict[str, str]) -> None:
        """Payload indexes for these fields (name -> engine.filters type), created once."""

    @abstractmethod
    def _scroll(
        self, batch: int, fields: list[str] | None, with_vector: bool, where: Sequence[Clause] = ()
    ) -> Iterator:
        """Every record (with .id, .payload, .vector) matching `where`, fetched `batch` at a time."""

    def scroll(
        self, batch: int = 256, fields: list[str] | None = None, where: Sequence[Clause] = ()
    ) -> Iterator[tuple[str, dict]]:
        """Every (id, payload) matching `where` (all: none given), in id order, the payload cut to
        `fields` when given."""
        for records in _chunks(self._scroll(batch, fields, with_vector=False, where=where), batch):
            payloads = {str(r.id): dict(r.payload or {}) for r in records}
            if fields is None or set(fields) & set(SIDECAR_FIELDS):
                self._add_sidecar(payloads, fields)
            yield from payloads.items()

    def dense_vectors(self, name: str, batch: int = 256) -> Iterator[tuple[str, list[float]]]:
        """(id, vector) of every point that has the dense vector `name`."""
        for record in self._scroll(batch, ["sha256"], with_vector=True):
            vector = (record.vector or {}).get(name)
            if vector is not None:
                yield str(record.id), list(vector)

    def points(self, batch: int = 256) -> Iterator[PointData]:
        """Every point whole (vectors and payload), `batch` at a time: for copying a collection."""
        for records in _chunks(self._scroll(batch, None, with_vector=True), batch):
            payloads = {str(r.id): dict(r.payload or {}) for r in records}
            self._add_sidecar(payloads)
            for r in records:
                yield PointData(str(r.id), plain_vectors(r.vector), payloads[str(r.id)])

    @abstractmethod
    def search(
        self,
        queries: list[ChannelQuery],
        weights: list[float],
        limit: int,
        offset: int,
        prefetch_limit: int,
        rrf_k: int,
        where: Sequence[Clause] = (),
        diversity: float | None = None,
        exact: bool = False,
    ) -> SearchResult:
        """One batch call: the fused query (prefetch per channel + RRF) and each channel alone, every
        part restricted to the points matching `where`. With `diversity` (0-1), the fused candidates
        are re-ranked by maximal marginal relevance in `mmr_query`'s channel. Dense channels search
        the HNSW graph, on the int8 vectors when the collection is quantised, and rescore with the
        originals; `exact` compares the query with every original vector instead (slow: for
        measuring what the fast path misses)."""

    @abstractmethod
    def metadata(self) -> dict: ...

    @abstractmethod
    def update_metadata(self, values: dict) -> None: ...

    def warm_files(self) -> list:
        """Local files a server start reads ahead in the background (engine.store.warm); none for a
        store that lives elsewhere."""
        return []

    def flush(self) -> None:  # noqa: B027 (optional hook)
        """Make everything written so far durable."""

    def optimize(self) -> None:  # noqa: B027 (optional hook)
        """Build indexes after a bulk write (a Qdrant server does this by itself)."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release the store."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# engine.filters field type -> Qdrant payload index type (PayloadSchemaType member name, capitalised).
INDEX_TYPES = {"keyword": "Keyword", "keywords": "Keyword", "integer": "Integer", "float": "Float",
               "datetime": "Datetime", "text": "Text"}  # fmt: skip
# Index param class per type (qdrant_edge / qdrant_client.models name), for indexes without
# payload-aware HNSW links.
INDEX_PARAMS = {"keyword": "KeywordIndexParams", "keywords": "KeywordIndexParams",
                "integer": "IntegerIndexParams", "float": "FloatIndexParams",
                "datetime": "DatetimeIndexParams"}  # fmt: skip
MAX_TIES = 10_000  # points sharing one sort value that browsing reads to order them by id


def payload_links(field: str, kind: str) -> bool:
    """Whether a payload index also adds payload-aware links to the HNSW graphs (Qdrant builds a
    sub-graph per value, or per range block, holding more points than its full-scan threshold).
    They keep a selective equality filter fast and exact, so the user's keyword metadata (brand,
    advertiser...) gets them; the built-in fields (broad filters, sorting, facets) and numeric or
    date ranges do not: at 1M points each such index would add up to one more graph build per vector
    for little use (bench/results/scale.md, docs/scaling.md)."""
    return kind in ("keyword", "keywords") and field not in BUILTIN_FIELDS


def _chunks(records: Iterator, size: int) -> Iterator[list]:
    """Lists of `size` records (the last one shorter)."""
    while chunk := list(islice(records, size)):
        yield chunk


def missing_vectors(existing: dict[str, int], wanted: dict[str, int]) -> dict[str, int]:
    """The addable vectors (ADDABLE_VECTORS) wanted but absent from an existing collection."""
    return {n: s for n, s in wanted.items() if n in ADDABLE_VECTORS and n not in existing}


def check_dims(existing: dict[str, int], wanted: dict[str, int], collection: str) -> None:
    """StoreError when a wanted vector's size differs from the collection's (addable ones missing
    from it are not checked: the caller adds them)."""
    for name, size in wanted.items():
        if name in ADDABLE_VECTORS and name not in existing:
            continue
        if existing.get(name) != size:
            raise StoreError(
                f"collection '{collection}' stores {name} vectors of size {existing.get(name)}, "
                f"but the current model gives {size}: use another --collection or --db, or the model "
                "the collection was built with"
            )


def plain_vectors(vectors: dict | None) -> dict[str, list[float] | SparseVec]:
    """Backend vector objects -> lists and SparseVec."""
    out: dict[str, list[float] | SparseVec] = {}
    for name, value in (vectors or {}).items():
        if hasattr(value, "indices"):
            out[name] = SparseVec(list(value.indices), list(value.values))
        else:
            out[name] = list(value)
    return out


def search_params(api, channel: str, exact: bool, oversampling: float, hnsw_ef: int | None):
    """Search parameters of a dense channel, built with `api` (the qdrant_edge module or
    qdrant_client.models: same class and argument names): rescored int8 search (ignored by a
    collection that is not quantised), or exact float32 search; None for the sparse channel (always
    exact)."""
    if channel == SPARSE_CHANNEL:
        return None
    if exact:
        return api.SearchParams(exact=True, quantization=api.QuantizationSearchParams(ignore=True))
    quantization = api.QuantizationSearchParams(rescore=True, oversampling=oversampling)
    return api.SearchParams(hnsw_ef=hnsw_ef, quantization=quantization)


def scored_hits(points) -> list[ScoredHit]:
    """A backend's scored points as ScoredHit."""
    return [ScoredHit(str(p.id), float(p.score), dict(p.payload) if p.payload else None) for p in points]


def search_result(queries: list[ChannelQuery], results: list[list]) -> SearchResult:
    return SearchResult(
        fused=scored_hits(results[0]),
        per_channel={q.channel: scored_hits(r) for q, r in zip(queries, results[1:], strict=True)},
    )
