"""Store.scroll(where=...): every point matching the filter, across pages, on both backends (the
export of a browse streams through it)."""

from __future__ import annotations

import pytest
from qdrant_client import QdrantClient

from engine.filters import Clause
from engine.store import ClientStore, EdgeStore, PointData, point_id


@pytest.fixture(params=["edge", "client"])
def store(request, tmp_path):
    if request.param == "edge":
        s = EdgeStore(tmp_path / "db", "ads")
    else:
        s = ClientStore(QdrantClient(path=str(tmp_path / "local")), "ads")
    s.ensure_collection({"image": 4})
    s.upsert([
        PointData(point_id(f"{i:064x}"), {"image": [1.0, i, 0.5, -1.0]},
                  {"i": i, "format": "PNG" if i % 3 else "JPEG", "paths": [f"/ads/{i}.png"]})
        for i in range(40)
    ])  # fmt: skip
    s.ensure_indexes({"format": "keyword", "i": "integer"})
    yield s
    s.close()


def test_a_filtered_scroll_yields_every_match_once_in_id_order(store):
    got = list(store.scroll(batch=7, fields=["i", "format"], where=[Clause("format", "=", "PNG")]))
    assert sorted(p["i"] for _, p in got) == [i for i in range(40) if i % 3]
    assert [pid for pid, _ in got] == sorted(pid for pid, _ in got)
    assert all(set(p) == {"i", "format"} for _, p in got)  # the payload cut to the fields asked
    ranged = [Clause("i", ">=", 10), Clause("format", "!=", "PNG")]
    assert sorted(p["i"] for _, p in store.scroll(batch=4, where=ranged)) == list(range(12, 40, 3))
    assert len(list(store.scroll(batch=5))) == 40  # no filter: everything, as before
