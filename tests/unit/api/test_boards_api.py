"""The boards routes over real HTTP: an app of its own over a copy of the ingested sample."""

from __future__ import annotations

import pytest
from helpers import copy_of_sample, served_client

from api import create_app
from api.settings import ServeSettings
from engine.library import Library

MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def board_library(tmp_path_factory, settings, encoders, ingested):
    folder = copy_of_sample(ingested, tmp_path_factory.mktemp("boards-api-db"))
    with Library(ServeSettings.serving(settings).with_overrides(db=folder), encoders=encoders) as library:
        yield library


@pytest.fixture(scope="module")
def http(board_library):
    with served_client(create_app(board_library)) as c:
        yield c


@pytest.fixture(scope="module")
def ids(http) -> list[str]:
    return [
        h["id"] for h in http.get("/api/search", params={"where": "has_text=true", "k": 10}).json()["hits"]
    ]


def test_board_lifecycle(http, ids):
    created = http.post("/api/boards", json={"name": "Fast Food", "description": "burgers"})
    assert created.status_code == 201 and created.json()["name"] == "Fast Food"
    assert http.post("/api/boards", json={"name": "fast food"}).status_code == 422
    added = http.post("/api/boards/fast food/ads", json={"ids": ids[:3]})
    assert added.status_code == 200 and added.json()["added"] == ids[:3]
    listed = http.get("/api/boards").json()["boards"]
    assert [(b["name"], b["count"], b["description"]) for b in listed] == [("Fast Food", 3, "burgers")]
    shown = http.get("/api/boards/Fast Food", params={"k": 2}).json()
    assert shown["count"] == shown["total"] == 3 and len(shown["hits"]) == 2
    assert shown["hits"][0]["thumbnail_url"].startswith("/api/images/")
    filtered = http.get("/api/search", params={"where": "board=Fast Food", "k": 10}).json()
    assert {h["id"] for h in filtered["hits"]} == set(ids[:3])
    facet = http.get("/api/facets", params={"field": "board"}).json()
    assert facet["values"] == [{"value": "Fast Food", "count": 3}]
    similar = http.get("/api/boards/Fast Food/similar", params={"k": 5})
    assert similar.status_code == 200
    hits = similar.json()["hits"]
    assert hits and not {h["id"] for h in hits} & set(ids[:3])
    assert http.delete(f"/api/boards/Fast Food/ads/{ids[0]}").json()["removed"] == [ids[0]]
    assert http.delete(f"/api/boards/Fast Food/ads/{ids[0]}").status_code == 404  # not on it any more
    deleted = http.delete("/api/boards/FAST FOOD")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": "Fast Food", "ads": 2}
    assert http.get("/api/boards").json()["boards"] == []
    assert http.get(f"/api/images/{ids[1]}").status_code == 200  # the images stay


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("post", "/api/boards", {"name": "-x"}, 422, "bad board name"),
        ("post", "/api/boards", {"name": "a" * 65}, 422, "bad board name"),
        ("post", "/api/boards", {"name": "ok", "extra": 1}, 422, "extra"),
        ("post", "/api/boards", {"name": 5}, 422, "string"),
        ("post", "/api/boards", {"name": "ok", "description": "d" * 501}, 422, "500"),
        ("get", "/api/boards/nope", None, 404, "no board named 'nope'"),
        ("get", "/api/boards/a%2Cb", None, 422, "bad board name"),
        ("get", "/api/boards/" + "x" * 300, None, 422, "at most"),
        ("delete", "/api/boards/nope", None, 404, "no board"),
        ("post", "/api/boards/nope/ads", {"ids": [MISSING]}, 404, "no board"),
        ("post", "/api/boards/Held/ads", {"ids": []}, 422, "at least 1"),
        ("post", "/api/boards/Held/ads", {"ids": ["../etc"]}, 422, "pattern"),
        ("post", "/api/boards/Held/ads", {"ids": [MISSING]}, 422, "no image with id"),
        ("delete", "/api/boards/Held/ads/not-an-id", None, 422, "pattern"),
        ("get", "/api/boards/Held/similar", None, 422, "no ads yet"),
        ("get", "/api/boards/Held/similar?mode=nope", None, 422, "mode"),
    ],
)
def test_hostile_input_is_a_clear_4xx(http, method, path, body, status, reason):
    if not any(b["name"] == "Held" for b in http.get("/api/boards").json()["boards"]):
        assert http.post("/api/boards", json={"name": "Held"}).status_code == 201
    response = http.request(method.upper(), path, json=body)
    assert response.status_code == status, response.text
    assert reason in response.text


def test_writes_need_the_key_and_the_same_site(http, board_library, ids):
    board_library.settings = board_library.settings.with_overrides(api_key="s3cret")
    try:
        assert http.post("/api/boards", json={"name": "Locked"}).status_code == 401
        assert (
            http.post("/api/boards", json={"name": "Locked"}, headers={"X-API-Key": "s3cret"}).status_code
            == 201
        )
        assert http.post("/api/boards/Locked/ads", json={"ids": ids[:1]}).status_code == 401
        assert http.delete("/api/boards/Locked").status_code == 401
        assert http.get("/api/boards").status_code == 200  # reads need no key
    finally:
        board_library.settings = board_library.settings.with_overrides(api_key="")
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert http.post("/api/boards/Locked/ads", json={"ids": ids[:1]}, headers=evil).status_code == 403
    assert http.delete("/api/boards/Locked", headers=evil).status_code == 403
    assert http.delete("/api/boards/Locked").status_code == 200
