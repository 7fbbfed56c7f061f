"""The Qdrant store: both backends (embedded Qdrant Edge, qdrant-client local mode) behave the same."""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import QdrantClient

from engine.errors import StoreError
from engine.store import ChannelQuery, ClientStore, EdgeStore, PointData, SparseVec, point_id

DIMS = {"image": 8, "text": 6}


@pytest.fixture(params=["edge", "client"])
def store(request, tmp_path):
    if request.param == "edge":
        s = EdgeStore(tmp_path / "db", "ads")
    else:
        s = ClientStore(QdrantClient(path=str(tmp_path / "local")), "ads")
    yield s
    s.close()


def random_points(n: int, seed: int = 0) -> list[PointData]:
    rng = np.random.default_rng(seed)
    points = []
    for i in range(n):
        vectors = {"image": rng.normal(size=8).tolist()}
        if i % 4:  # every fourth point has no text vectors
            vectors["text"] = rng.normal(size=6).tolist()
            vectors["keywords"] = SparseVec([i, 1000 + i % 3], [1.0 + i / 10, 0.5])
        points.append(PointData(point_id(f"{i:064x}"), vectors, {"i": i, "paths": [f"/ads/{i}.png"]}))
    return points


def rrf(per_channel: dict[str, list[str]], weights: dict[str, float], k: int) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion as Qdrant documents it: sum of 1 / (k + (rank - 1 + 1) / w - 1)."""
    scores: dict[str, float] = {}
    for channel, ids in per_channel.items():
        w = weights[channel]
        for position, pid in enumerate(ids):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / ((position + 1) / w + k - 1)
    return sorted(scores.items(), key=lambda item: -item[1])


def test_point_id_is_stable_uuid5_of_the_hash():
    assert point_id("ab" * 32) == point_id("ab" * 32) != point_id("cd" * 32)
    assert len(point_id("ab" * 32)) == 36


def test_upsert_retrieve_count_and_missing_vectors(store):
    store.ensure_collection(DIMS)
    points = random_points(12)
    store.upsert(points)
    assert store.count() == 12
    assert store.count("text") == 9 and store.count("image") == 12
    got = store.retrieve([points[0].id, points[1].id, point_id("f" * 64)], with_vectors=True)
    assert set(got) == {points[0].id, points[1].id}
    assert got[points[0].id]["_vectors"] == ["image"]
    assert got[points[1].id]["_vectors"] == ["image", "keywords", "text"]
    store.upsert(points[:3])  # same ids again: no duplicates
    assert store.count() == 12
    assert sorted(p["i"] for _, p in store.scroll(batch=5)) == list(range(12))


def test_set_payload_merges_and_keeps_vectors(store):
    store.ensure_collection(DIMS)
    p = random_points(2)[1]
    store.upsert([p])
    store.set_payload(p.id, {"paths": ["/a.png", "/b.png"]})
    got = store.retrieve([p.id], with_vectors=True)[p.id]
    assert got["paths"] == ["/a.png", "/b.png"] and got["i"] == 1
    assert got["_vectors"] == ["image", "keywords", "text"]


def test_delete(store):
    store.ensure_collection(DIMS)
    points = random_points(5)
    store.upsert(points)
    store.delete([points[0].id, points[3].id])
    assert store.count() == 3 and not store.retrieve([points[0].id])


def test_dimension_mismatch_is_refused(store):
    store.ensure_collection(DIMS)
    store.ensure_collection(DIMS)  # same sizes: fine
    with pytest.raises(StoreError, match="image vectors of size 8"):
        store.ensure_collection({"image": 16, "text": 6})


def test_metadata_round_trip(store):
    store.ensure_collection(DIMS)
    store.update_metadata({"visual": False, "models": {"text": "m"}})
    store.update_metadata({"visual": True})
    meta = store.metadata()
    assert meta["visual"] is True and meta["models"] == {"text": "m"} and meta["dims"] == DIMS


@pytest.mark.parametrize(
    "weights", [{"image": 1.0, "text": 1.0, "keywords": 1.0}, {"image": 0.5, "text": 3.0, "keywords": 1.0}]
)
@pytest.mark.parametrize("rrf_k", [5, 60])
def test_fusion_order_matches_hand_computed_rrf(store, weights, rrf_k):
    store.ensure_collection(DIMS)
    store.upsert(random_points(40, seed=3))
    rng = np.random.default_rng(9)
    queries = [
        ChannelQuery("image", rng.normal(size=8).tolist()),
        ChannelQuery("text", rng.normal(size=6).tolist()),
        ChannelQuery("keywords", SparseVec([5, 9, 13, 1001], [1.0, 1.0, 1.0, 1.0])),
    ]
    result = store.search(
        queries,
        weights=[weights[q.channel] for q in queries],
        limit=10,
        offset=0,
        prefetch_limit=15,
        rrf_k=rrf_k,
    )
    per_channel = {c: [h.id for h in hits] for c, hits in result.per_channel.items()}
    assert len(per_channel["image"]) == 15 and len(per_channel["text"]) == 15 and per_channel["keywords"]
    expected = dict(rrf(per_channel, weights, k=rrf_k))
    fused_scores = [h.score for h in result.fused]
    assert fused_scores == sorted(fused_scores, reverse=True) and len(result.fused) == 10
    for hit in result.fused:  # every fused score is the hand-computed RRF of the channel rankings
        assert hit.score == pytest.approx(expected[hit.id], rel=1e-4)
    tenth = sorted(expected.values(), reverse=True)[9]
    assert {pid for pid, s in expected.items() if s > tenth * (1 + 1e-4)} <= {h.id for h in result.fused}
    assert result.fused[0].payload["paths"]  # payload comes back with the fused hits


def test_single_channel_query_returns_similarity_order(store):
    store.ensure_collection(DIMS)
    points = random_points(20)
    store.upsert(points)
    q = np.ones(8)
    result = store.search(
        [ChannelQuery("image", q.tolist())], [1.0], limit=5, offset=0, prefetch_limit=20, rrf_k=60
    )
    vectors = {p.id: np.array(p.vectors["image"]) for p in points}
    cosine = {pid: v @ q / np.linalg.norm(v) / np.linalg.norm(q) for pid, v in vectors.items()}
    assert [h.id for h in result.fused] == sorted(cosine, key=lambda pid: -cosine[pid])[:5]
    offset = store.search(
        [ChannelQuery("image", q.tolist())], [1.0], limit=3, offset=2, prefetch_limit=20, rrf_k=60
    )
    assert [h.id for h in offset.fused] == [h.id for h in result.fused][2:5]


def test_embedded_store_refuses_a_second_opener(tmp_path):
    first = EdgeStore(tmp_path / "db", "ads")
    try:
        with pytest.raises(StoreError, match=r"in use by PID \d+"):
            EdgeStore(tmp_path / "db", "ads")
    finally:
        first.close()
    EdgeStore(tmp_path / "db", "ads").close()  # free again once closed


def test_embedded_store_survives_reopen(tmp_path):
    s = EdgeStore(tmp_path / "db", "ads")
    s.ensure_collection(DIMS)
    s.upsert(random_points(7))
    s.close()
    again = EdgeStore(tmp_path / "db", "ads")
    assert again.count() == 7 and again.dims() == DIMS
    again.close()


def test_search_on_missing_collection_says_what_to_do(store):
    with pytest.raises(StoreError, match="adsearch ingest"):
        store.search([ChannelQuery("image", [0.0] * 8)], [1.0], limit=5, offset=0, prefetch_limit=5, rrf_k=60)


def test_equal_scores_come_back_in_the_same_order_every_time(store):
    """Copies of one creative score alike in every channel: a search repeated gives the same fused and
    per-channel rankings (so a page and the next never overlap or skip), alone or fused."""
    store.ensure_collection(DIMS)
    base = random_points(6, seed=4)
    copies = [PointData(point_id(f"copy{i:060x}"), base[1].vectors, {"i": 100 + i}) for i in range(12)]
    store.upsert(base + copies)
    queries = [ChannelQuery(c, base[1].vectors[c]) for c in ("image", "text", "keywords")]

    def ranking(asked):
        result = store.search(asked, [1.0] * len(asked), 8, 0, 10, 3)
        per_channel = tuple(tuple(h.id for h in hits) for hits in result.per_channel.values())
        return tuple(h.id for h in result.fused), per_channel

    for asked in (queries, queries[2:]):  # fused, and the keywords channel alone
        assert len({ranking(asked) for _ in range(5)}) == 1
    alone = store.search(queries[:1], [1.0], 4, 2, 10, 3)
    ranked = [h.id for h in alone.per_channel["image"]]
    assert [h.id for h in alone.fused] == ranked[2:6] and all(h.payload["i"] >= 0 for h in alone.fused)
