"""Images from fsspec URLs (engine/media/sources.py): fsspec's in-memory and local filesystems stand in for
object storage (s3fs and gcsfs are the same interface). Stored under their URL, found again by
content on reruns, served by the web UI through the same filesystem."""

from __future__ import annotations

import shutil
import uuid

import fsspec
import httpx
import pytest
from helpers import serve

from api import create_app
from engine.cli import main
from engine.errors import UsageError
from engine.library import Library
from engine.media.sources import DEFAULT_POLICY, SourcePolicy, discover_sources, read_bytes
from engine.search import SearchRequest

# fsspec's in-memory filesystem stands in for object storage: allowed here as a remote scheme
MEMORY = SourcePolicy((*DEFAULT_POLICY.schemes, "memory"))


@pytest.fixture()
def bucket(sample_dir, truth):
    """Six sample ads under memory://<random>/ads/ (two in a sub-folder)."""
    fs = fsspec.filesystem("memory")
    root = f"/{uuid.uuid4().hex}"
    ads = [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]][:6]
    for n, ad in enumerate(ads):
        name = ad["file"].rsplit("/", 1)[-1]
        fs.pipe(f"{root}/ads/{'sub/' if n < 2 else ''}{name}", (sample_dir / ad["file"]).read_bytes())
    fs.pipe(f"{root}/ads/notes.md", b"not an image")
    yield fs, root, ads
    fs.rm(root, recursive=True)


@pytest.fixture()
def library(tmp_path, settings, encoders):
    with Library(
        settings.with_overrides(db=tmp_path / "db", url_schemes=MEMORY.schemes), encoders=encoders
    ) as lib:
        yield lib


def test_discovery_of_a_prefix_and_of_a_list_file(bucket):
    fs, root, ads = bucket
    with pytest.raises(UsageError, match="'memory' is not allowed"):
        list(discover_sources([f"memory://{root}/ads"]))  # not in the default allow-list
    found = list(discover_sources([f"memory://{root}/ads"], MEMORY))
    assert len(found) == 6 and all(s.location.startswith(f"memory://{root}/ads/") for s in found)
    assert sorted(s.folder for s in found) == [".", ".", ".", ".", "sub", "sub"]
    urls = [s.location for s in found[:2]]
    fs.pipe(f"{root}/list.txt", ("# two ads\n" + "\n".join(urls) + "\n\n").encode())
    listed = list(discover_sources([f"memory://{root}/list.txt"], MEMORY))
    assert [s.location for s in listed] == urls
    assert read_bytes(urls[0], MEMORY) == fs.cat_file(urls[0].removeprefix("memory://"))
    with pytest.raises(OSError):
        read_bytes(f"memory://{root}/missing.png", MEMORY)
    with pytest.raises(OSError, match="not allowed"):
        read_bytes(urls[0])
    with pytest.raises(UsageError, match="nosuchproto"):
        list(discover_sources(["nosuchproto://bucket/ads"]))


def test_ingest_from_a_url_stores_urls_and_finds_the_same_bytes_again(bucket, library, tmp_path, sample_dir):
    fs, root, ads = bucket
    failures: dict[str, str] = {}
    report = library.ingest([f"memory://{root}/ads"], on_error=failures.__setitem__)
    assert (report.ingested, report.failed, failures) == (6, [], {})
    stored = {p["paths"][0]: p for _, p in library.store.scroll(fields=["paths", "folder", "file_date"])}
    assert all(path.startswith(f"memory://{root}/ads/") for path in stored)
    assert sorted(p["folder"] for p in stored.values()) == [".", ".", ".", ".", "sub", "sub"]
    assert all(p["file_date"] for p in stored.values())  # the memory filesystem knows when
    hit = library.search(SearchRequest(q=ads[3]["brand"], mode="keyword", k=1)).hits[0]
    assert hit.paths[0].startswith("memory://") and ads[3]["file"].rsplit("/", 1)[-1] in hit.paths[0]

    again = library.ingest([f"memory://{root}/ads"])
    assert (again.ingested, again.unchanged) == (0, 6)
    # the same bytes from a local copy, listed in a local list file beside a missing URL: one new
    # path, one failure line, nothing re-processed
    local = tmp_path / "copy.png"
    shutil.copy(sample_dir / ads[0]["file"], local)
    (tmp_path / "list.txt").write_text(f"file://{local}\nmemory://{root}/gone.png\n")
    failures.clear()
    listed = library.ingest([f"file://{tmp_path}/list.txt"], on_error=failures.__setitem__)
    assert (listed.ingested, listed.new_paths) == (0, 1)
    assert (
        list(failures) == [f"memory://{root}/gone.png"]
        and "cannot read file" in failures[f"memory://{root}/gone.png"]
    )
    hit = library.search(SearchRequest(q=ads[0]["brand"], mode="keyword", k=1)).hits[0]
    assert f"file://{local}" in hit.paths
    # a list on a remote host may not pull in local files, whatever their bytes
    secret = tmp_path / "secret.png"
    shutil.copy(sample_dir / ads[1]["file"], secret)
    fs.pipe(f"{root}/remote.txt", f"file://{secret}\n{secret}\n".encode())
    failures.clear()
    remote = library.ingest([f"memory://{root}/remote.txt"], on_error=failures.__setitem__)
    assert (remote.ingested, remote.new_paths, len(remote.failed)) == (0, 0, 2)
    assert all("may not name a local file" in reason for reason in failures.values())
    assert not any(str(secret) in p for _, pl in library.store.scroll(fields=["paths"]) for p in pl["paths"])


def test_the_web_ui_serves_a_url_image_through_its_filesystem(bucket, library):
    fs, root, ads = bucket
    library.ingest([f"memory://{root}/ads"])
    (image_id, payload), *_ = library.store.scroll(fields=["paths"])
    url = payload["paths"][0]
    original = fs.cat_file(url.removeprefix("memory://"))
    with serve(create_app(library)) as port:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/images/{image_id}/file").content == original
        fs.rm(url.removeprefix("memory://"))  # gone from the bucket: the copy kept at ingest serves
        assert httpx.get(f"{base}/api/images/{image_id}/file").content == original
        thumbnail = httpx.get(f"{base}/api/images/{image_id}/thumbnail")
        assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    library.delete(image_id)
    assert not (library.data_dir / "originals" / image_id).exists()


def test_cli_unknown_protocol_is_one_line(tmp_path, capsys):
    assert main(["ingest", "nosuchproto://bucket/ads", "--db", str(tmp_path / "db"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuchproto://bucket/ads" in err[0]
