"""The store backend registry: open_store asks the registered backends, so a backend added from
outside engine/store (here, from this file alone) is chosen for the settings it handles."""

from __future__ import annotations

import pytest

from engine.settings import Settings
from engine.store import (
    ChannelQuery,
    ClientStore,
    EdgeStore,
    PointData,
    SparseVec,
    StoreBackend,
    backend_names,
    open_store,
    point_id,
    register_backend,
    unregister_backend,
)
from engine.store.backends import backend_for

DIMS = {"image": 4, "text": 3}


class ToyStore(EdgeStore):
    """An embedded store under its own URL scheme, `toy://<collection>`, that records its openings."""

    opened: list[str] = []

    @classmethod
    def open(cls, settings: Settings) -> ToyStore:
        collection = settings.qdrant_url.removeprefix("toy://")
        cls.opened.append(collection)
        return cls(settings.db, collection, quantize=settings.quantize)


@pytest.fixture
def toy_backend():
    ToyStore.opened.clear()
    register_backend(StoreBackend("toy", lambda s: (s.qdrant_url or "").startswith("toy://"), ToyStore.open))
    yield
    unregister_backend("toy")


def test_a_backend_registered_from_outside_is_chosen_and_round_trips_a_point(toy_backend, tmp_path):
    settings = Settings(db=tmp_path / "db", qdrant_url="toy://posters")
    assert backend_for(settings).name == "toy" and backend_names()[-1] == "toy"
    with open_store(settings) as store:
        assert type(store) is ToyStore and ToyStore.opened == ["posters"]
        store.ensure_collection(DIMS)
        point = PointData(
            point_id("ab" * 32),
            {"image": [1.0, 0.0, 0.0, 0.0], "text": [0.0, 1.0, 0.0], "keywords": SparseVec([3], [1.0])},
            {"paths": ["/ads/a.png"], "ocr_words": [{"text": "sale"}]},
        )
        store.upsert([point])
        got = store.retrieve([point.id], with_vectors=True)[point.id]
        assert got["paths"] == ["/ads/a.png"] and got["ocr_words"] == [{"text": "sale"}]
        assert got["_vectors"] == ["image", "keywords", "text"]
        hits = store.search([ChannelQuery("image", [1.0, 0.0, 0.0, 0.0])], [1.0], 5, 0, 10, 3).fused
        assert [h.id for h in hits] == [point.id]
    assert (tmp_path / "db" / "posters").is_dir()  # the toy's collection, where it put it


def test_the_built_in_backends_keep_their_settings(toy_backend, tmp_path):
    """The toy takes only its own scheme; every other URL still goes to the Qdrant server, no URL to
    the embedded store; unregistered, the toy's URLs fall back to the server backend."""
    assert backend_for(Settings(db=tmp_path, qdrant_url="http://qdrant:6333")).name == "qdrant-server"
    with open_store(Settings(db=tmp_path / "db", hnsw_ef=300)) as store:
        assert type(store) is EdgeStore and store.hnsw_ef == 300
    assert ToyStore.opened == []
    unregister_backend("toy")
    assert backend_for(Settings(db=tmp_path, qdrant_url="toy://posters")).name == "qdrant-server"
    assert "toy" not in backend_names()


def test_a_name_registered_twice_is_refused(toy_backend):
    with pytest.raises(ValueError, match="'toy' is registered twice"):
        register_backend(StoreBackend("toy", lambda s: False, ClientStore))
