"""Bulk loading (engine.store.bulk: points first, payload indexes and graphs after) and the start-up
read-ahead of an embedded store (engine.store.warm), on a real Qdrant Edge shard with its HNSW graph
and int8 vectors."""

from __future__ import annotations

import numpy as np
import pytest
from test_store_scale import DIMS, make_points, open_backend, queries

from engine.filters import Clause
from engine.store import EdgeStore
from engine.store.bulk import BulkLoad
from engine.store.warm import Warmup, on_demand_files, opening_files, read_ahead

N = 2000


def exact_order(points, q: np.ndarray, channel: str, keep=lambda p: True) -> list[str]:
    """Ids by cosine to `q`, computed here, not by Qdrant."""
    scored = []
    for p in points:
        if channel in p.vectors and keep(p):
            v = np.asarray(p.vectors[channel])
            scored.append((-float(v @ q / np.linalg.norm(v) / np.linalg.norm(q)), p.id))
    return [pid for _, pid in sorted(scored)]


def image_top(store, q: np.ndarray, where=(), limit: int = 10) -> list[str]:
    result = store.search([_image_query(q)], [1.0], limit, 0, 100, 3, where=where)
    return [h.id for h in result.fused]


def _image_query(q):
    from engine.store import ChannelQuery

    return ChannelQuery("image", q.tolist())


def test_search_during_a_bulk_load_is_correct_and_the_graphs_come_at_the_end(tmp_path):
    points = make_points(N)
    store = open_backend("edge", tmp_path)
    store.ensure_collection(DIMS)
    load = BulkLoad(store)
    first = 1200
    for start in range(0, first, 400):
        load.write(points[start : start + 400])
    rng = np.random.default_rng(5)
    q = rng.normal(size=DIMS["image"])
    half = points[:first]

    # mid-load: no graph, no payload index yet; the answers are the exact ones, filter included
    def vectors(pts, *channels):
        return sum(c in p.vectors for p in pts for c in channels)

    assert store.shard.info().indexed_vectors_count == vectors(half, "keywords")  # sparse index only
    assert image_top(store, q) == exact_order(half, q, "image")[:10]
    below = [Clause("i", "<", 600)]  # a filter on a field with no payload index yet
    assert (
        image_top(store, q, where=below) == exact_order(half, q, "image", lambda p: p.payload["i"] < 600)[:10]
    )
    for start in range(first, N, 400):
        load.write(points[start : start + 400])
    load.finish({"i": "integer"})
    figures = load.figures()
    assert figures["points"] == N and figures["write_points_per_s"] > 0
    assert min(figures["write_s"], figures["optimize_s"]) >= 0 and figures["payload_index_s"] >= 0
    # the graphs (and int8 vectors) were built by finish: every vector is indexed now
    assert store.shard.info().indexed_vectors_count == vectors(points, "keywords", "image", "text")
    assert store.metadata()["indexes"] == {"i": "integer"}
    found = image_top(store, q, limit=10)
    assert len(set(found) & set(exact_order(points, q, "image")[:10])) >= 9  # HNSW on int8, rescored
    exact_below = exact_order(points, q, "image", lambda p: p.payload["i"] < 600)[:10]
    assert len(set(image_top(store, q, where=below)) & set(exact_below)) >= 9
    store.close()


def fused(store) -> list[tuple[float, str]]:
    """A hybrid search's fused top 10, equal RRF scores ordered by id."""
    hits = store.search(queries(1)[0], [1.0, 3.0, 1.0], 10, 0, 100, 3).fused
    return sorted((-round(h.score, 6), h.id) for h in hits)


def test_opening_and_on_demand_files_split_the_shard_and_opening_reads_ahead(tmp_path):
    points = make_points(1500)
    store = open_backend("edge", tmp_path)
    store.ensure_collection(DIMS)
    load = BulkLoad(store)
    load.write(points)
    load.finish({})
    before = fused(store)
    shard = store.path
    store.close()
    opening, on_demand = opening_files(shard), on_demand_files(shard)
    assert not set(opening) & set(on_demand)
    assert set(opening) | set(on_demand) == {p for p in shard.rglob("*") if p.is_file()}
    names = lambda paths: {p.name for p in paths}  # noqa: E731
    assert "quantized.data" in names(opening) and "matrix.dat" in names(on_demand)
    assert any(p.parent.name.startswith("vector_index-") for p in opening)  # graphs and inverted index
    assert any("payload_storage" in p.parts for p in on_demand)
    assert read_ahead(opening) == sum(p.stat().st_size for p in opening)
    reopened = EdgeStore(tmp_path / "db", "ads")  # reads the opening files ahead, then opens
    assert fused(reopened) == before
    files = reopened.warm_files()
    assert set(on_demand) <= set(files) and reopened.sidecar.path in files
    reopened.close()


def test_warmup_reads_every_file_then_runs_its_follow_up(tmp_path):
    files = []
    for i, size in enumerate((3 << 20, (9 << 20) + 17, 0)):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(b"x" * size)
        files.append(path)
    ran = []
    warmup = Warmup([*files, tmp_path / "gone.bin"], then=lambda: ran.append(True))
    assert not warmup.warming and warmup.state()["read_mib"] == 0
    warmup.start()
    assert warmup.wait(30)
    state = warmup.state()
    assert not warmup.warming and ran == [True] and state["note"] == ""
    assert warmup.read == warmup.total == sum(f.stat().st_size for f in files)
    assert state["read_mib"] == state["total_mib"] == round(warmup.total / 2**20, 1)


def test_warmup_skips_files_bigger_than_half_the_free_memory_and_reports_a_failure(tmp_path, monkeypatch):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 4096)
    monkeypatch.setattr("engine.store.warm.available_bytes", lambda: 4096)  # as if the machine were full
    ran = []
    warmup = Warmup([path], then=lambda: ran.append(True)).start()
    assert warmup.wait(30) and warmup.read == 0 and ran == [True]
    assert "not read ahead" in warmup.state()["note"]

    def broken():
        raise RuntimeError("no encoders")

    failed = Warmup([], then=broken).start()
    assert failed.wait(30) and not failed.warming
    assert failed.state()["note"] == "warm-up stopped: RuntimeError: no encoders"


@pytest.mark.parametrize("kind", ["client"])
def test_a_store_elsewhere_has_nothing_to_warm(kind, tmp_path):
    store = open_backend(kind, tmp_path)
    store.ensure_collection(DIMS)
    assert store.warm_files() == []
    store.close()
