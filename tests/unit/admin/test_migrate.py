"""`adsearch migrate`: an embedded collection copied whole to another store, no OCR, no encoding."""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import QdrantClient

from engine.admin.migrate import copy_collection
from engine.cli import main
from engine.errors import StoreError
from engine.search import Searcher
from engine.settings import Settings
from engine.store import ClientStore, EdgeStore, SparseVec


def _points(store) -> dict:
    return {p.id: p for p in store.points(batch=7)}  # odd batch: paging must not lose points


def _assert_same_vectors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        if isinstance(value, SparseVec):
            assert dict(zip(value.indices, value.values, strict=True)) == pytest.approx(
                dict(zip(b[name].indices, b[name].values, strict=True))
            )
        else:
            np.testing.assert_allclose(value, b[name], atol=1e-6)


def test_copy_to_a_qdrant_client_store_keeps_every_point_and_the_search(ingested, settings, encoders):
    source, _ = ingested
    target = ClientStore(QdrantClient(location=":memory:"), "ads")
    report = copy_collection(source, target, batch=5, progress=False)
    assert report.copied == report.source_count == report.target_count == source.count() > 0
    before, after = _points(source), _points(target)
    assert before.keys() == after.keys()
    for pid, point in before.items():
        assert after[pid].payload == point.payload
        _assert_same_vectors(point.vectors, after[pid].vectors)
    meta = target.metadata()
    assert meta["pipeline"] == source.metadata()["pipeline"] and meta["visual"] == source.metadata()["visual"]
    # the copy answers queries exactly like the original (no re-encoding happened)
    for query in ["burger", "safe family car"]:
        original = Searcher(settings, encoders, source).search(query, k=5)
        copied = Searcher(settings, encoders, target).search(query, k=5)
        assert [h.id for h in copied.hits] == [h.id for h in original.hits]
    # a rerun (say after an interruption) adds nothing twice
    assert copy_collection(source, target, progress=False).target_count == report.source_count


def test_missing_source_collection_is_a_clear_error(tmp_path):
    target = ClientStore(QdrantClient(location=":memory:"), "ads")
    missing = pytest.raises(StoreError, match="nothing to migrate")
    with EdgeStore(tmp_path / "empty", "ads") as source, missing:
        copy_collection(source, target, progress=False)


def test_cli_migrate_folder_to_folder(ingested, tmp_path, capsys):
    source, _ = ingested
    first = tmp_path / "first"
    with EdgeStore(first, "ads") as store:  # a store of our own: the session store is locked
        copy_collection(source, store, progress=False)
    second = tmp_path / "second"
    assert main(["migrate", "--from", str(first), "--to", str(second), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"copied {source.count()} of {source.count()} points" in out
    with EdgeStore(second, "ads") as copy:
        assert copy.count() == source.count() and copy.count("text") == source.count("text")
    assert main(["migrate", "--from", str(first), "--to", str(first), "--no-progress"]) == 2


def test_cli_migrate_to_an_unreachable_server_fails_cleanly(ingested, tmp_path, capsys):
    source, _ = ingested
    with EdgeStore(tmp_path / "db", "ads") as store:
        copy_collection(source, store, progress=False)
    code = main(["migrate", "--from", str(tmp_path / "db"), "--to", "http://127.0.0.1:9", "--no-progress"])
    assert code == 2
    assert "cannot reach Qdrant at http://127.0.0.1:9" in capsys.readouterr().err


def test_shard_and_replication_settings_reach_collection_creation(monkeypatch):
    monkeypatch.setenv("ADSEARCH_SHARD_NUMBER", "3")
    monkeypatch.setenv("ADSEARCH_REPLICATION_FACTOR", "2")
    settings = Settings()
    client = QdrantClient(location=":memory:")
    created = {}
    real_create = client.create_collection

    def spy(*args, **kwargs):  # records what a server would be asked for; local mode ignores sharding
        created.update(kwargs)
        return real_create(*args, **kwargs)

    client.create_collection = spy
    store = ClientStore.from_settings(client, settings)
    store.ensure_collection({"image": 4, "text": 3})
    assert created["shard_number"] == 3 and created["replication_factor"] == 2
    assert store.dims() == {"image": 4, "text": 3}
