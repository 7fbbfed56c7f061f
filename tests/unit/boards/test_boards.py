"""Boards: definitions in the collection metadata, membership as the `boards` payload field (filters,
facets, counts inside Qdrant), kept through re-ingest and migrate; "more like this board"; the CLI."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from helpers import adsearch, copy_of_sample
from qdrant_client import QdrantClient

from engine.admin.migrate import copy_collection
from engine.boards import METADATA_KEY, BoardError, Boards
from engine.errors import NotFound, SearchError
from engine.ingest.ingestor import ingest
from engine.library import Library
from engine.search import SearchRequest
from engine.search.fields import CollectionFields
from engine.search.request import MAX_EXAMPLES
from engine.store import ClientStore, EdgeStore


@pytest.fixture
def db(tmp_path, ingested):
    """A folder holding a copy of the ingested sample (no OCR, no encoding), closed again."""
    return copy_of_sample(ingested, tmp_path / "db")


@pytest.fixture
def library(db, settings, encoders):
    with Library(settings.with_overrides(db=db), encoders=encoders) as lib:
        yield lib


def ids_of(library, *where: str) -> list[str]:
    """Ids of the stored images matching `where`, in browse order."""
    return [h.id for h in library.search(SearchRequest(where=list(where)).deeper(50)).hits]


def board_ids(library, where: str) -> set[str]:
    response = library.search(SearchRequest(where=[where]).deeper(50))
    assert response.total == len(response.hits)
    return {h.id for h in response.hits}


def test_a_board_lives_in_qdrant_fields_filters_and_facets(library):
    boards, ids = library.boards, ids_of(library)
    created = boards.create("Summer Sale", description="  hot deals ")
    assert (
        created["name"] == "Summer Sale" and created["description"] == "hot deals" and created["count"] == 0
    )
    with pytest.raises(BoardError, match="exists already"):
        boards.create("summer SALE")
    assert boards.add("summer sale", ids[:3]) == {"board": "Summer Sale", "added": ids[:3], "already": []}
    again = boards.add("Summer Sale", [ids[1], ids[3]])
    assert again["added"] == [ids[3]] and again["already"] == [ids[1]]
    boards.create("Other")
    boards.add("Other", [ids[0]])
    # membership is a payload field: the filter language (alias and real name) and facets see it
    assert board_ids(library, "board=Summer Sale") == board_ids(library, "boards=Summer Sale") == set(ids[:4])
    assert board_ids(library, "board!=Summer Sale") == set(ids) - set(ids[:4])
    facet = {row["value"]: row["count"] for row in library.facets("board")["values"]}
    assert facet == {"Summer Sale": 4, "Other": 1}
    assert [(b["name"], b["count"]) for b in boards.list()] == [("Other", 1), ("Summer Sale", 4)]
    assert boards.ids("SUMMER SALE") == ids[:4]  # the order they were added in
    assert library.get(ids[0])["boards"] == ["Summer Sale", "Other"]
    page = boards.ads("Summer Sale", k=2, offset=1)
    assert page.total == 4 and len(page.hits) == 2 and {h.id for h in page.hits} < set(ids[:4])


def test_removing_deleting_and_image_deletion(library):
    boards, ids = library.boards, ids_of(library)
    boards.create("keep")
    boards.add("keep", ids[:5])
    removed = boards.remove("keep", [ids[0], ids[9]])
    assert removed["removed"] == [ids[0]] and removed["not_on_board"] == [ids[9]]
    assert library.get(ids[0])["boards"] == [] and boards.info("keep")["count"] == 4
    library.delete(ids[1])  # the point is gone, so is its membership
    assert boards.ids("keep") == ids[2:5] and boards.info("keep")["count"] == 3
    assert [b["count"] for b in boards.list()] == [3]
    total = library.store.count()
    assert boards.delete("KEEP") == {"deleted": "keep", "ads": 3}
    assert library.store.count() == total  # the images stay
    assert all("keep" not in library.get(i).get("boards", []) for i in ids[2:5])
    assert library.facets("board")["values"] == [] and boards.list() == []
    with pytest.raises(NotFound, match="no board named 'keep'"):
        boards.info("keep")
    boards.create("keep")  # the name is free again, and the new board is empty
    assert boards.info("keep")["count"] == 0


@pytest.mark.parametrize(
    "name", ["", " ", "-rm", "_x", "a,b", "a  b", "x" * 65, "tab\there", "new\nline", "a[b]", "a=b", 7, None]
)
def test_bad_names_are_refused_with_the_rule(library, name):
    with pytest.raises(BoardError, match="letters, digits|is text"):
        library.boards.create(name)
    assert library.boards.list() == []


def test_bad_ids_and_descriptions_change_nothing(library):
    boards, ids = library.boards, ids_of(library)
    boards.create("b")
    with pytest.raises(BoardError, match="no image with id 00000000-0000-0000-0000-000000000000"):
        boards.add("b", [ids[0], "00000000-0000-0000-0000-000000000000"])
    with pytest.raises(BoardError, match="is not an image id"):
        boards.add("b", ["../../etc/passwd"])
    with pytest.raises(BoardError, match="at least one"):
        boards.add("b", [])
    assert boards.info("b")["count"] == 0 and "boards" not in library.get(ids[0])
    with pytest.raises(NotFound):
        boards.add("nope", [ids[0]])
    with pytest.raises(BoardError, match="at most 500"):
        boards.create("c", "x" * 501)
    with pytest.raises(BoardError, match="control characters"):
        boards.create("c", "\x1b[31mred")


def test_more_like_this_board(library):
    ids = ids_of(library, "has_text=true")
    library.boards.create("one")
    library.boards.add("one", [ids[0]])
    like = library.like_board("one", mode="text", k=5)
    assert [h.id for h in like.hits] == [h.id for h in library.similar(ids[0], mode="text", k=5).hits]
    library.boards.create("two")
    library.boards.add("two", ids[:2])
    hybrid = library.like_board("two", k=30)
    assert hybrid.hits and not {h.id for h in hybrid.hits} & set(ids[:2])  # its own ads are left out
    assert set(hybrid.channels) == {"image", "text", "keywords"}
    # best score over the examples: each hit is at least as close as to either example alone
    text = library.like_board("two", mode="text", k=3)
    firsts = {library.similar(i, mode="text", k=3, where=["board!=two"]).hits[0].id for i in ids[:2]}
    assert text.hits[0].id in firsts
    filtered = library.like_board("two", k=30, where=["format=JPEG"])
    assert filtered.hits and all(library.get(h.id)["format"] == "JPEG" for h in filtered.hits)


def test_a_large_board_uses_its_most_recent_ads(library):
    ids = ids_of(library)
    assert len(ids) > MAX_EXAMPLES + 1
    library.boards.create("big")
    library.boards.add("big", ids[: MAX_EXAMPLES + 1])
    like = library.like_board("big", mode="text", k=5)
    assert any("most recently added" in note for note in like.notes)
    assert not {h.id for h in like.hits} & set(ids[: MAX_EXAMPLES + 1])
    library.boards.create("empty")
    with pytest.raises(SearchError, match="no ads yet"):
        library.like_board("empty")


def test_membership_survives_a_reingest_that_reprocesses(tmp_path, settings, encoders, sample_dir, truth):
    folder = tmp_path / "two"
    folder.mkdir()
    for ad in truth[:2]:
        shutil.copy(sample_dir / ad["file"], folder)
    with EdgeStore(tmp_path / "db", "ads") as store:
        ingest([folder], settings, encoders, store, progress=False)
        boards = Boards(store, threading.Lock(), CollectionFields(store, threading.Lock()))
        boards.create("kept")
        (first, second) = [pid for pid, _ in store.scroll()]
        boards.add("kept", [second, first])
        before = store.retrieve([first])[first]
        changed = settings.with_overrides(ocr_min_confidence=70.0, ocr_ppocr_min_confidence=70.0)
        report = ingest([folder], changed, encoders, store, progress=False)
        assert report.ingested == 2  # both points rewritten whole
        after = store.retrieve([first])[first]
        assert after["pipeline"]["signature"] != before["pipeline"]["signature"]
        assert after["boards"] == ["kept"] and boards.ids("kept") == [second, first]
        assert [b["count"] for b in boards.list()] == [2]


@pytest.mark.parametrize("target_kind", ["server", "folder"])
def test_membership_survives_migrate(library, tmp_path, target_kind):
    ids = ids_of(library)
    library.boards.create("Moved", "across stores")
    library.boards.add("Moved", ids[:3])
    if target_kind == "server":
        target = ClientStore(QdrantClient(location=":memory:"), "ads")
    else:
        target = EdgeStore(tmp_path / "copy", "ads")
    with target:
        copy_collection(library.store, target, progress=False)
        assert target.metadata()[METADATA_KEY] == library.store.metadata()[METADATA_KEY]
        boards = Boards(target, threading.Lock(), CollectionFields(target, threading.Lock()))
        assert [(b["name"], b["description"], b["count"]) for b in boards.list()] == [
            ("Moved", "across stores", 3)
        ]
        assert boards.ids("moved") == ids[:3]


def test_cli(db, tiny_clip_dir):
    def run(*args):
        return adsearch(
            "board", *args, "--db", str(db), env_extra={"ADSEARCH_CLIP_MODEL": str(tiny_clip_dir)}
        )

    assert run("create", "Nike Shoes", "--description", "swoosh").returncode == 0
    listed = run("list", "--json")
    assert json.loads(listed.stdout)["boards"][0]["name"] == "Nike Shoes"
    with EdgeStore(db, "ads") as store:
        ids = [pid for pid, _ in store.scroll()][:3]
    added = run("add", "nike shoes", *ids)
    assert added.returncode == 0 and "added 3 to Nike Shoes (0 already on it)" in added.stdout
    shown = json.loads(run("show", "Nike Shoes", "-k", "2", "--json").stdout)
    assert shown["count"] == 3 and shown["total"] == 3 and len(shown["hits"]) == 2
    assert "3 ads" in run("show", "Nike Shoes").stdout
    facets = adsearch("facets", "board", "--db", str(db))
    assert facets.returncode == 0 and "3  Nike Shoes" in facets.stdout
    like = run("like", "Nike Shoes", "-k", "3", "--json")
    assert like.returncode == 0, like.stderr
    assert len(json.loads(like.stdout)["hits"]) == 3
    assert not {h["id"] for h in json.loads(like.stdout)["hits"]} & set(ids)
    assert run("remove", "Nike Shoes", ids[0]).stdout.startswith("removed 1 from Nike Shoes")
    for args, message in [
        (("create", "a,b"), "bad board name"),
        (("create", "x" * 80), "bad board name"),
        (("create", "NIKE shoes"), "exists already"),
        (("add", "nope", ids[0]), "no board named 'nope'"),
        (("add", "Nike Shoes", "not-an-id"), "is not an image id"),
        (("add", "Nike Shoes", "00000000-0000-0000-0000-000000000000"), "no image with id"),
        (("show", "Nike Shoes", "-k", "0"), "-k must be between"),
    ]:
        bad = run(*args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and message in bad.stderr, (
            args,
            bad.stderr,
        )
    deleted = run("delete", "nike shoes")
    assert deleted.returncode == 0 and "deleted board Nike Shoes (2 ads" in deleted.stdout
    assert json.loads(run("list", "--json").stdout)["boards"] == []
