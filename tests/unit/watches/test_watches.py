"""Watches (issue 23): saved searches checked after every ingest. An exact watch collects every new ad
matching its filter, a ranked one the new ads entering its top N; each match is recorded once, also
when the process is killed between an ingest's write and its check; the Atom feed carries them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import feedparser
import httpx
import pytest
from helpers import adsearch, serve

from api.app import create_app
from engine.errors import NotFound, SearchError
from engine.library import Library
from engine.watches import Watch, check_watches


def split_sample(sample_dir, truth, tmp_path):
    """Two folders: the first 10 readable ads (ingested before the watches exist) and the rest."""
    readable = [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]]
    before, after = tmp_path / "before", tmp_path / "after"
    for folder, ads in ((before, readable[:10]), (after, readable[10:])):
        folder.mkdir()
        for ad in ads:
            shutil.copy(sample_dir / ad["file"], folder)
    return before, after, readable[10:]


@pytest.fixture()
def watched(tmp_path, settings, encoders, sample_dir, truth):
    before, after, later_ads = split_sample(sample_dir, truth, tmp_path)
    library = Library(settings.with_overrides(db=tmp_path / "db"), encoders=encoders)
    library.ingest([before])
    yield library, after, later_ads
    library.close()


def names(library: Library, ids: list[str]) -> set[str]:
    payloads = library.store.retrieve(ids)
    return {os.path.basename(payloads[i]["paths"][0]) for i in ids}


def test_exact_and_ranked_watches_collect_only_new_matching_ads_once(watched):
    library, after, later_ads = watched
    target = later_ads[0]
    library.watches.add(Watch("pngs", where=["format=PNG"]))
    library.watches.add(Watch("target", query=target["headline"], top=3))
    with pytest.raises(SearchError, match="exists already"):
        library.watches.add(Watch("PNGS"))

    report = library.ingest([after])
    expected_png = {os.path.basename(a["file"]) for a in later_ads if a["file"].endswith(".png")}
    assert report.watch_matches["pngs"] == len(expected_png)
    found = [m["id"] for m in library.watches.matches("pngs")]
    assert names(library, found) == expected_png  # the earlier PNGs never match: they predate the watch
    ranked = names(library, [m["id"] for m in library.watches.matches("target")])
    assert os.path.basename(target["file"]) in ranked and len(ranked) <= 3
    assert "new watch matches: pngs" in report.summary()

    assert check_watches(library) == {"pngs": 0, "target": 0}  # nothing new: nothing recorded twice
    assert library.watches.unseen()["pngs"] == len(expected_png)
    library.watches.matches("pngs", mark_seen=True)
    assert "pngs" not in library.watches.unseen()


def test_deleting_an_ad_or_a_watch_drops_its_matches(watched):
    library, after, _ = watched
    library.watches.add(Watch("pngs", where=["format=PNG"]))
    library.ingest([after])
    first = library.watches.matches("pngs")[0]["id"]
    library.delete(first)
    assert first not in [m["id"] for m in library.watches.matches("pngs")]
    library.watches.remove("pngs")
    with pytest.raises(NotFound):
        library.watches.matches("pngs")


CRASH = """
import os, signal, sys
from pathlib import Path
import engine.library
from engine.settings import Settings

def killed(library):  # the ingest has written its points; the process dies before the check
    os.kill(os.getpid(), signal.SIGKILL)

engine.library.check_watches = killed
from engine.library import Library
with Library(Settings(db=Path(sys.argv[1]), clip_model=sys.argv[3])) as library:
    library.ingest([Path(sys.argv[2])])
"""


def test_a_kill_between_the_write_and_the_check_loses_no_match_and_records_it_once(
    tmp_path, sample_dir, truth, tiny_clip_dir
):
    before, after, later_ads = split_sample(sample_dir, truth, tmp_path)
    db, env = tmp_path / "db", {"ADSEARCH_WORKERS": "2", "ADSEARCH_CLIP_MODEL": str(tiny_clip_dir)}
    assert adsearch("ingest", str(before), "--db", str(db), "--no-progress", env_extra=env).returncode == 0
    added = adsearch("watch", "add", "pngs", "--where", "format=PNG", "--db", str(db), env_extra=env)
    assert added.returncode == 0, added.stderr
    crash = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASH), str(db), str(after), str(tiny_clip_dir)],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, timeout=300,
    )  # fmt: skip
    assert crash.returncode == -9, crash.stderr  # killed after the write, before the check
    shown = adsearch("watch", "show", "pngs", "--json", "--db", str(db), env_extra=env)
    assert shown.returncode == 0 and shown.stdout.strip() == "[]"  # nothing was checked yet

    rerun = adsearch("ingest", str(after), "--db", str(db), "--no-progress", env_extra=env)  # all unchanged
    assert rerun.returncode == 0, rerun.stderr
    expected = sum(1 for a in later_ads if a["file"].endswith(".png"))
    shown = adsearch("watch", "show", "pngs", "--json", "--db", str(db), env_extra=env)
    matches = json.loads(shown.stdout)
    assert len(matches) == expected == len({m["id"] for m in matches})
    again = adsearch("watch", "check", "--json", "--db", str(db), env_extra=env)
    assert json.loads(again.stdout) == {"pngs": 0}


def test_the_atom_feed_and_the_api(watched):
    library, after, later_ads = watched
    with serve(create_app(library)) as port:
        base = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=base, timeout=60)
        created = http.post("/api/watches", json={"name": "pngs", "where": ["format=PNG"]})
        assert created.status_code == 201 and created.json()["kind"] == "exact"
        assert http.post("/api/watches", json={"name": "../x"}).status_code == 422
        assert http.post("/api/watches", json={"name": "bad", "where": ["nosuchfield=1"]}).status_code == 422
        assert http.get("/api/watches/nothere").status_code == 404
        library.ingest([after])
        listed = http.get("/api/watches").json()["watches"]
        expected = sum(1 for a in later_ads if a["file"].endswith(".png"))
        assert listed[0]["name"] == "pngs" and listed[0]["unseen"] == expected
        feed = feedparser.parse(http.get(listed[0]["feed_url"]).content)
        assert not feed.bozo and feed.feed.title == "adsearch watch: pngs"
        assert len(feed.entries) == expected
        entry = feed.entries[0]
        assert entry.link.startswith(base + "/images/") and "/thumbnail" in entry.content[0].value
        page = http.get(entry.link.removeprefix(base))
        assert page.status_code == 200
        assert http.delete("/api/watches/pngs").json()["deleted"] is True


@pytest.mark.parametrize(
    ("query", "where", "exact"),
    [('"burger"', [], True), ('"zero emissions" -diesel', [], True), ("", ["format=PNG"], True),
     ("cheap burger", [], False), ('"burger" deal', [], False)],
)  # fmt: skip
def test_a_watch_is_exact_when_it_has_no_free_words(query, where, exact):
    from engine.watches import is_exact

    assert is_exact(Watch("w", query, where)) is exact


@pytest.mark.parametrize(
    ("name", "kept"),
    [("Zero emissions.v2", "Zero emissions.v2"), ("  Café-Ads_1 ", "Café-Ads_1"), ("a  b", None),
     ("-x", None), ("a,b", None), ("x" * 65, None), ("trailing ", "trailing")],
)  # fmt: skip
def test_boards_and_watches_accept_the_same_names(name, kept):
    """One rule (engine.schema) for every saved name: a board and a watch accept or refuse a name alike,
    and a refusal says the same rule."""
    from engine.boards import BoardError
    from engine.boards import check_name as board_name
    from engine.watches import check_name as watch_name

    if kept is None:
        with pytest.raises(BoardError) as board_refusal:
            board_name(name)
        with pytest.raises(SearchError) as watch_refusal:
            watch_name(name)
        assert board_refusal.value.args[0].split(": ", 1)[1] == watch_refusal.value.args[0].split(": ", 1)[1]
    else:
        assert board_name(name) == watch_name(name) == kept
