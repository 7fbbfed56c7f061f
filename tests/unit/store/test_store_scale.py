"""The store at scale (issue 15): int8 quantised dense vectors with rescoring, the heavy payload
fields (word boxes...) in a sidecar beside the embedded shard and out of the hits, and
collections made before all this still opening and searching; both backends (Qdrant Edge,
qdrant-client local mode) alike."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from qdrant_client import QdrantClient

from engine.errors import StoreError
from engine.settings import Settings
from engine.store import ChannelQuery, ClientStore, EdgeStore, PointData, SparseVec, open_store, point_id
from engine.store.base import HIT_PAYLOAD_EXCLUDE, SIDECAR_FIELDS

DIMS = {"image": 48, "text": 32}
N = 3000


def words(i: int) -> list[dict]:
    """Word boxes as ingest stores them."""
    return [
        {"text": f"w{i}-{j}", "confidence": 90.5, "left": j * 10, "top": i % 50, "width": 9, "height": 12,
         "block": 0, "paragraph": 0, "line": j // 4, "reader": "ppocr"}
        for j in range(1 + i % 7)
    ]  # fmt: skip


def make_points(n: int, seed: int = 0) -> list[PointData]:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, DIMS["image"])).astype(np.float32)
    text = rng.normal(size=(n, DIMS["text"])).astype(np.float32)
    points = []
    for i in range(n):
        vectors: dict = {"image": image[i].tolist()}
        if i % 5:  # every fifth point has no text
            vectors["text"] = text[i].tolist()
            vectors["keywords"] = SparseVec([i % 97, 200 + i % 13], [1.0, 0.5])
        payload = {"paths": [f"/ads/{i}.png"], "ocr_text": f"ad {i}", "ocr_raw_text": f"ad {i} raw",
                   "ocr_words": words(i), "ocr_words_by_reader": {"ppocr": 1 + i % 7}, "i": i,
                   "pipeline": {"signature": "s1", "models": {"text": "m"}}}  # fmt: skip
        points.append(PointData(point_id(f"{i:064x}"), vectors, payload))
    return points


def queries(n: int, seed: int = 1) -> list[list[ChannelQuery]]:
    rng = np.random.default_rng(seed)
    return [
        [
            ChannelQuery("image", rng.normal(size=DIMS["image"]).tolist()),
            ChannelQuery("text", rng.normal(size=DIMS["text"]).tolist()),
            ChannelQuery("keywords", SparseVec([int(rng.integers(97)), 201], [1.0, 1.0])),
        ]
        for _ in range(n)
    ]


def open_backend(kind: str, tmp_path, quantize: bool = True):
    if kind == "edge":
        store = EdgeStore(tmp_path / "db", "ads", quantize=quantize)
        store.indexing_threshold_kb = 1  # index even this small collection: HNSW graph + int8 vectors
        return store
    return ClientStore(QdrantClient(path=str(tmp_path / "local")), "ads", quantize=quantize)


def fill(store, points) -> None:
    store.ensure_collection(DIMS)
    for i in range(0, len(points), 500):
        store.upsert(points[i : i + 500])
    store.flush()
    store.optimize()


def search(store, qs, exact=False, limit=10):
    return store.search(qs, [1.0, 3.0, 1.0], limit, 0, 100, 3, exact=exact)


def recall(a: list, b: list) -> float:
    return len({h.id for h in a} & {h.id for h in b}) / len(b)


@pytest.fixture(scope="module")
def points():
    return make_points(N)


@pytest.fixture(params=["edge", "client"])
def filled(request, tmp_path, points):
    store = open_backend(request.param, tmp_path)
    fill(store, points)
    yield request.param, store
    store.close()


def int8_files(store: EdgeStore) -> list[str]:
    return [f for _, _, files in os.walk(store.path / "segments") for f in files if f.startswith("quantized")]


def test_quantised_search_finds_what_exact_search_finds(filled):
    kind, store = filled
    if kind == "edge":  # the int8 copies exist, and the float32 originals are on disk, not in RAM
        assert int8_files(store)
        config = json.loads((store.path / "edge_config.json").read_text())
        assert config["quantization_config"]["scalar"]["type"] == "int8"
        assert {v["memory"] for v in config["vectors"].values()} == {"cold"}
    assert store.metadata()["quantization"] == "int8"
    fused, per_channel = [], []
    for qs in queries(30):
        fast, exact = search(store, qs), search(store, qs, exact=True)
        fused.append(recall(fast.fused, exact.fused))
        for channel in ("image", "text"):
            per_channel.append(recall(fast.per_channel[channel][:10], exact.per_channel[channel][:10]))
            # rescored: the scores are the float32 ones, not int8 approximations
            exact_scores = {h.id: h.score for h in exact.per_channel[channel]}
            for hit in fast.per_channel[channel][:10]:
                if hit.id in exact_scores:
                    assert hit.score == pytest.approx(exact_scores[hit.id], abs=1e-4)
    assert np.mean(fused) >= 0.9 and np.mean(per_channel) >= 0.9


def test_without_rescoring_int8_alone_misses_more(tmp_path, points):
    """The test above would pass without quantisation: show that int8 is in use (Edge)."""
    store = open_backend("edge", tmp_path)
    fill(store, points)
    qs = queries(30)
    exact = [search(store, q[:1], exact=True, limit=10).fused for q in qs]
    rescored = [search(store, q[:1], limit=10).fused for q in qs]
    qe = store.qe
    plain = []
    for q in qs:  # the same search with the int8 scores returned as they are
        request = qe.QueryRequest(
            limit=10,
            query=qe.Query.Nearest(q[0].vector, using="image"),
            params=qe.SearchParams(quantization=qe.QuantizationSearchParams(rescore=False)),
        )
        plain.append(store.shard.query(request))
    exact_scores = [{h.id: h.score for h in e} for e in exact]
    rescored_error = max(
        abs(h.score - s[h.id]) for r, s in zip(rescored, exact_scores, strict=True) for h in r if h.id in s
    )
    int8_error = max(
        abs(p.score - s[str(p.id)])
        for r, s in zip(plain, exact_scores, strict=True)
        for p in r
        if str(p.id) in s
    )
    assert rescored_error < 1e-4 < int8_error
    store.close()


def test_heavy_fields_come_back_for_the_image_page_but_not_with_hits(filled, points):
    kind, store = filled
    got = store.retrieve([points[7].id, points[8].id])
    for p in (points[7], points[8]):
        assert got[p.id]["ocr_words"] == p.payload["ocr_words"]
        assert got[p.id]["ocr_raw_text"] == p.payload["ocr_raw_text"]
        assert got[p.id]["ocr_words_by_reader"] == p.payload["ocr_words_by_reader"]
    for hit in search(store, queries(1)[0]).fused:
        assert hit.payload["paths"] and hit.payload["ocr_text"]
        assert not set(HIT_PAYLOAD_EXCLUDE) & set(hit.payload)
    whole = {p.id: p.payload for p in store.points(batch=700)}
    assert whole[points[9].id]["ocr_words"] == points[9].payload["ocr_words"]
    scrolled = dict(store.scroll(batch=700, fields=["ocr_words"]))
    assert scrolled[points[10].id] == {"ocr_words": points[10].payload["ocr_words"]}
    store.set_payload(points[11].id, {"ocr_words": words(3), "paths": ["/elsewhere.png"]})
    again = store.retrieve([points[11].id])[points[11].id]
    assert again["ocr_words"] == words(3) and again["paths"] == ["/elsewhere.png"] and again["i"] == 11
    assert got[points[7].id]["pipeline"] == points[7].payload["pipeline"]
    only = dict(store.scroll(batch=700, fields=["pipeline", "i"]))
    assert only[points[12].id] == {"pipeline": points[12].payload["pipeline"], "i": 12}
    if kind == "edge":  # the heavy fields are in the sidecar, not in Qdrant's payload
        raw = store.shard.retrieve([points[7].id], with_payload=True, with_vector=False)[0].payload
        assert not set(SIDECAR_FIELDS) & set(raw) and raw["ocr_text"] == "ad 7"
        assert store.sidecar.count() == N


def old_edge_collection(tmp_path, points) -> None:
    """A collection as adsearch made it before issue 15: float32 vectors in RAM, word boxes as objects."""
    import qdrant_edge as qe

    db = tmp_path / "db"
    db.mkdir()
    config = qe.EdgeConfig(
        vectors={n: qe.EdgeVectorParams(size=s, distance=qe.Distance.Cosine) for n, s in DIMS.items()},
        sparse_vectors={"keywords": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1),
    )
    shard = qe.EdgeShard.create(str(db / "ads"), config)
    for i in range(0, len(points), 500):
        batch = [
            qe.Point(
                p.id,
                {k: qe.SparseVector(v.indices, v.values) if isinstance(v, SparseVec) else v
                 for k, v in p.vectors.items()},
                p.payload,
            )
            for p in points[i : i + 500]
        ]  # fmt: skip
        shard.update(qe.UpdateOperation.upsert_points(batch))
    shard.optimize()
    shard.close()
    (db / "ads.meta.json").write_text(json.dumps({"dims": DIMS}))


@pytest.mark.parametrize("kind", ["edge", "client"])
def test_a_collection_made_before_quantisation_still_opens_and_searches(tmp_path, points, kind):
    if kind == "edge":
        old_edge_collection(tmp_path, points)
        store = EdgeStore(tmp_path / "db", "ads")  # quantize=True: applies to new collections only
    else:
        old = ClientStore(QdrantClient(path=str(tmp_path / "local")), "ads", quantize=False)
        fill(old, points)
        old.close()
        store = ClientStore(QdrantClient(path=str(tmp_path / "local")), "ads")
    store.ensure_collection(DIMS)  # what ingest does first: accepted as it is
    assert store.count() == N and store.metadata().get("quantization") is None
    if kind == "edge":
        assert not int8_files(store)
        config = json.loads((store.path / "edge_config.json").read_text())
        assert "quantization_config" not in config or config["quantization_config"] is None
    got = store.retrieve([points[5].id])[points[5].id]
    assert got["ocr_words"] == points[5].payload["ocr_words"]  # stored as objects, read as they are
    rates = [recall(search(store, qs).fused, search(store, qs, exact=True).fused) for qs in queries(10)]
    assert np.mean(rates) >= 0.9
    store.upsert(make_points(3, seed=5))  # new points into the old layout, packed or not: all readable
    extra = make_points(3, seed=5)[2]
    assert store.retrieve([extra.id])[extra.id]["ocr_words"] == extra.payload["ocr_words"]
    store.close()


def test_both_backends_give_the_same_exact_and_nearly_the_same_fast_results(tmp_path, points):
    edge, client = open_backend("edge", tmp_path), open_backend("client", tmp_path)
    fill(edge, points)
    fill(client, points)
    agree = []
    for qs in queries(20):
        a, b = search(edge, qs, exact=True), search(client, qs, exact=True)
        for channel in ("image", "text"):
            assert [h.id for h in a.per_channel[channel]] == [h.id for h in b.per_channel[channel]]
        agree.append(recall(search(edge, qs).fused, search(client, qs).fused))
    assert np.mean(agree) >= 0.9
    edge.close()
    client.close()


def test_quantisation_is_a_setting(tmp_path, monkeypatch):
    assert Settings().quantize is True
    monkeypatch.setenv("ADSEARCH_QUANTIZE", "false")
    settings = Settings(db=tmp_path / "db")
    assert settings.quantize is False
    store = open_store(settings)
    assert isinstance(store, EdgeStore) and store.quantize is False
    store.ensure_collection(DIMS)
    config = json.loads((store.path / "edge_config.json").read_text())
    assert not config.get("quantization_config")
    assert store.metadata()["quantization"] is None
    store.close()
    client = ClientStore.from_settings(QdrantClient(location=":memory:"), settings)
    assert client.quantize is False


def test_the_search_beam_is_a_setting(tmp_path, monkeypatch):
    assert Settings().hnsw_ef == 512
    monkeypatch.setenv("ADSEARCH_HNSW_EF", "1024")
    settings = Settings(db=tmp_path / "db")
    store = open_store(settings)
    assert store.hnsw_ef == 1024 and store._params("image", exact=False).hnsw_ef == 1024
    assert store._params("keywords", exact=False) is None  # sparse search is exact anyway
    store.close()
    client = ClientStore.from_settings(QdrantClient(location=":memory:"), settings)
    assert client._params("text", exact=False).hnsw_ef == 1024


def test_set_payload_on_a_missing_point_is_an_error(filled):
    kind, store = filled
    if kind == "edge":  # the server backend leaves it to Qdrant
        with pytest.raises(StoreError, match="no point"):
            store.set_payload(point_id("e" * 64), {"paths": []})


@pytest.mark.parametrize("weights", [[1.0, 3.0, 1.0], [0.5, 1.0, 2.0]])
def test_fused_pages_are_windows_of_one_ranking_with_light_payloads(filled, weights):
    """Qdrant's fused ranking, quantised or exact: the second page continues the first (RRF scores
    tie often; Qdrant may order a tie differently per request, so ids are compared away from the
    page edges' scores), and hits carry the light payload (paths), never the word boxes."""
    kind, store = filled
    for qs in queries(5, seed=3):
        for exact in (True, False):
            first = store.search(qs, weights, 10, 0, 100, 3, exact=exact)
            assert len(first.fused) == 10
            for hit in first.fused:
                assert hit.payload["paths"] and "ocr_words" not in hit.payload
            page2 = store.search(qs, weights, 5, 5, 100, 3, exact=exact)
            expected = first.fused[5:10]
            assert [h.score for h in page2.fused] == pytest.approx([h.score for h in expected])
            edges = {round(first.fused[4].score, 6), round(first.fused[9].score, 6)}
            inner = {h.id for h in page2.fused if round(h.score, 6) not in edges}
            assert inner == {h.id for h in expected if round(h.score, 6) not in edges}


class FailingWrites:
    """An Edge shard whose writes fail (its methods are read-only, so a stand-in)."""

    def __init__(self, shard):
        self._shard = shard

    def __getattr__(self, name):
        return getattr(self._shard, name)

    def update(self, operation):
        raise RuntimeError("killed")


def test_a_crash_between_the_two_writes_loses_nothing(tmp_path, points, monkeypatch):
    """Sidecar first, then the point: a crash after the sidecar write leaves no point (so ingest
    does it again); a failed sidecar write leaves no point without its heavy fields."""
    store = open_backend("edge", tmp_path)
    store.ensure_collection(DIMS)
    batch = points[:20]

    def crash(*_):
        raise RuntimeError("killed")

    with monkeypatch.context() as m:  # the sidecar write fails: nothing reaches the shard
        m.setattr(store.sidecar, "replace", crash)
        with pytest.raises(RuntimeError):
            store.upsert(batch)
    assert store.count() == 0 and store.sidecar.count() == 0
    with monkeypatch.context() as m:  # the shard write fails after the sidecar's
        m.setattr(store, "shard", FailingWrites(store.shard))
        with pytest.raises(RuntimeError):
            store.upsert(batch)
    assert store.count() == 0 and store.retrieve([p.id for p in batch]) == {}  # not stored: redone
    store.upsert(batch)  # the rerun
    got = store.retrieve([p.id for p in batch])
    assert all(got[p.id]["ocr_words"] == p.payload["ocr_words"] for p in batch)
    store.delete([batch[0].id])  # delete: point, then its row
    assert store.sidecar.count() == 19 and batch[0].id not in store.retrieve([batch[0].id])
    store.upsert([PointData(batch[1].id, batch[1].vectors, {"paths": ["/x.png"]})])  # upsert replaces
    assert store.retrieve([batch[1].id])[batch[1].id] == {"paths": ["/x.png"]}
    store.close()
    again = EdgeStore(tmp_path / "db", "ads")  # reopened: both halves still there
    assert again.retrieve([batch[2].id])[batch[2].id]["ocr_words"] == batch[2].payload["ocr_words"]
    again.close()
