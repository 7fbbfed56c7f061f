"""Issue 21, the file and URL boundaries: only the bytes that were ingested are ever served (a
symlink swap, a changed file, a FIFO in place of an image get 404 with a reason), URL sources are an
allow-list read without redirects and never fetched on a reader's request, hostile folders (FIFOs,
devices, links leaving the tree, names that are not UTF-8) cost one error line each, and concurrent
thumbnail requests all get the same bytes."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from helpers import png_bytes, serve

from api import create_app
from engine.admin.doctor import diagnose
from engine.errors import NotFound
from engine.library import Library
from engine.media.sources import SourcePolicy, discover_sources, portable_name, read_bytes
from engine.store import point_id

SECRET = b"-----BEGIN PRIVATE KEY-----\nnot for anyone\n-----END PRIVATE KEY-----\n"


def sha_id(data: bytes) -> str:
    return point_id(hashlib.sha256(data).hexdigest())


@pytest.fixture()
def folder(tmp_path) -> Path:
    """Three distinct small ads."""
    out = tmp_path / "ads"
    out.mkdir()
    for n in range(3):
        (out / f"ad{n}.png").write_bytes(png_bytes())
    return out


@pytest.fixture()
def library(tmp_path, settings, encoders):
    with Library(settings.with_overrides(db=tmp_path / "db", workers=1), encoders=encoders) as lib:
        yield lib


def ingest_all(library: Library, *paths) -> tuple[object, dict[str, str]]:
    """Ingest on a thread with a deadline (a hang fails the test instead of stalling the suite)."""
    failures: dict[str, str] = {}
    result: list = []
    thread = threading.Thread(
        target=lambda: result.append(library.ingest(list(paths), on_error=failures.__setitem__)), daemon=True
    )
    thread.start()
    thread.join(timeout=240)
    assert not thread.is_alive(), "ingest hung"
    return result[0], failures


# ---------------------------------------------------------------------- item 1: serve what was ingested


def test_a_symlink_swap_or_a_changed_file_is_never_served(library, folder, tmp_path):
    ingest_all(library, folder)
    target = folder / "ad0.png"
    data = target.read_bytes()
    image_id = sha_id(data)
    secret = tmp_path / "id_rsa"
    secret.write_bytes(SECRET)
    with serve(create_app(library)) as port:
        base = f"http://127.0.0.1:{port}/api/images/{image_id}"
        assert httpx.get(f"{base}/file").content == data

        target.unlink()
        target.symlink_to(secret)  # ln -sf ~/.ssh/id_rsa folder/ad0.png
        for url in (f"{base}/file", f"{base}/thumbnail?size=512"):
            answer = httpx.get(url)
            assert answer.status_code == 404 and b"PRIVATE KEY" not in answer.content
            assert "link" in answer.json()["detail"]

        target.unlink()
        target.write_bytes(png_bytes())  # another picture under the same name
        answer = httpx.get(f"{base}/file")
        assert answer.status_code == 404 and "sha256" in answer.json()["detail"]

        target.unlink()
        os.mkfifo(target)  # a FIFO in its place: refused at once, not waited on
        answer = httpx.get(f"{base}/thumbnail?size=1024", timeout=20)
        assert answer.status_code == 404 and "FIFO" in answer.json()["detail"]

        target.unlink()
        target.write_bytes(data)  # the ingested bytes back: served again
        assert httpx.get(f"{base}/file").content == data


def test_doctor_lists_images_whose_file_vanished_or_changed(library, folder, settings):
    ingest_all(library, folder)
    (folder / "ad1.png").unlink()
    (folder / "ad2.png").write_bytes(b"x" * 10)
    library.close()
    findings = {f.topic: f for f in diagnose(library.settings).findings}
    files = findings["files"]
    assert files.status == "off" and files.text.startswith("2 of 3 images")
    assert "ad1.png: no longer there" in files.text and "ad2.png: changed" in files.text


# ---------------------------------------------------------------------- item 2: URL sources


class _Site(http.server.BaseHTTPRequestHandler):
    """A loopback web host: an ad, a list, a redirect to an 'internal' URL, a body over the cap."""

    routes: dict[str, tuple[int, dict, bytes]] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).hits.append(self.path)
        status, headers, body = self.routes.get(self.path, (404, {}, b"no"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def site(routes: dict):
    handler = type("Site", (_Site,), {"routes": routes, "hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()


def test_url_sources_no_redirects_no_fetch_on_request_and_only_matching_copies(library, tmp_path):
    ad, big = png_bytes(), png_bytes()
    routes: dict = {"/internal/meta": (200, {}, SECRET)}
    with site(routes) as (host, handler):
        routes["/ads.txt"] = (200, {}, f"{host}/ad.png\n{host}/moved.png\n{host}/big.png\n".encode())
        routes["/ad.png"] = (200, {"Content-Type": "image/png"}, ad)
        routes["/moved.png"] = (302, {"Location": f"{host}/internal/meta"}, b"")
        routes["/big.png"] = (200, {}, big + b"\0" * 4096)
        library.settings = library.settings.with_overrides(max_file_bytes=max(len(ad), len(big)) + 100)
        report, failures = ingest_all(library, f"{host}/ads.txt")
        assert report.ingested == 1 and len(failures) == 2
        assert "redirects are not followed" in failures[f"{host}/moved.png"]
        assert "byte limit" in failures[f"{host}/big.png"]
        assert "/internal/meta" not in handler.hits  # the redirect was not followed

        image_id = sha_id(ad)
        fetched = len(handler.hits)
        with serve(create_app(library)) as port:
            base = f"http://127.0.0.1:{port}/api/images/{image_id}"
            assert httpx.get(f"{base}/file").content == ad
            assert httpx.get(f"{base}/thumbnail?size=128").status_code == 200
            routes["/ad.png"] = (302, {"Location": f"{host}/internal/meta"}, b"")  # the host turns hostile
            kept = library.data_dir / "originals" / image_id
            kept.write_bytes(SECRET)  # a copy that does not match is never served
            answer = httpx.get(f"{base}/file")
            assert answer.status_code == 404 and b"PRIVATE" not in answer.content
            kept.unlink()
            answer = httpx.get(f"{base}/file")
            assert answer.status_code == 404 and "ingest its source again" in answer.json()["detail"]
        assert len(handler.hits) == fetched  # no request made the server fetch anything
        assert not kept.exists()


def test_url_schemes_are_an_allow_list(library, tmp_path, capsys):
    from engine.cli import main

    db = tmp_path / "db2"
    assert main(["ingest", "webhdfs://127.0.0.1:9/ads/ad.png", "--db", str(db), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'webhdfs' is not allowed" in err[0]
    listed = tmp_path / "list.txt"
    listed.write_text("ftp://127.0.0.1/ad.png\nsimplecache::s3://bucket/ad.png\n")
    report, failures = ingest_all(library, listed.as_uri())
    assert report.ingested == 0 and len(failures) == 2
    assert all("is not allowed" in reason for reason in failures.values())


# ---------------------------------------------------------------------- item 3: hostile folders


def test_fifos_devices_and_links_leaving_the_tree_cost_one_line_each(library, folder, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.png").write_bytes(png_bytes())
    os.mkfifo(folder / "evil.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "escape.png").symlink_to(outside / "private.png")
    (folder / "elsewhere").symlink_to(outside, target_is_directory=True)
    (folder / "inside.png").symlink_to(folder / "ad0.png")  # a link inside the tree: followed
    report, failures = ingest_all(library, folder)
    assert report.ingested == 3 and len(failures) == 4, failures
    names = {Path(p).name: reason for p, reason in failures.items()}
    assert "FIFO" in names["evil.png"]
    assert "outside the ingested folder" in names["zero.png"]
    assert "outside the ingested folder" in names["escape.png"]
    assert "outside the ingested folder" in names["elsewhere"]
    stored = [p for _, pl in library.store.scroll(fields=["paths"]) for p in pl["paths"]]
    assert not any("outside" in p for p in stored)


def test_read_bytes_refuses_special_files_and_caps_size(tmp_path):
    with pytest.raises(OSError, match="character device"):
        read_bytes("/dev/zero")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OSError, match="FIFO"):
        read_bytes(tmp_path / "pipe")  # returns at once: no writer is waited for
    (tmp_path / "big.png").write_bytes(b"\0" * 5000)
    with pytest.raises(OSError, match="5,000 bytes"):
        read_bytes(tmp_path / "big.png", SourcePolicy(max_bytes=4096))
    assert len(read_bytes(tmp_path / "big.png", SourcePolicy(max_bytes=5000))) == 5000


# ---------------------------------------------------------------------- item 4: names that are not UTF-8


def test_a_name_that_is_not_utf8_is_stored_escaped_and_served(library, folder):
    bad = os.path.join(os.fsencode(folder), b"bad\xffname\\x.png")
    data = png_bytes()
    with open(bad, "wb") as file:
        file.write(data)
    report, failures = ingest_all(library, folder)
    assert (report.ingested, failures) == (4, {})
    payload = library.get(sha_id(data))
    assert payload["paths"] == [f"{folder}/bad\\xffname\\x5cx.png"]
    assert library.original(sha_id(data)) == data  # the escaped name leads back to the file
    again, _ = ingest_all(library, folder)
    assert (again.ingested, again.unchanged) == (0, 4)
    assert portable_name("plain\\x41.png") == "plain\\x41.png"  # valid UTF-8 is stored as it is
    sources = list(discover_sources([folder]))
    assert sorted(s.relative for s in sources)[-1] == "bad\\xffname\\x5cx.png"


# ---------------------------------------------------------------------- item 7: concurrent thumbnails


def test_concurrent_requests_for_a_new_thumbnail_all_get_the_same_bytes(library, folder):
    ingest_all(library, folder)
    image_id = sha_id((folder / "ad1.png").read_bytes())
    with serve(create_app(library)) as port, httpx.Client() as client:
        url = f"http://127.0.0.1:{port}/api/images/{image_id}/thumbnail?size=512"
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: client.get(url), range(12)))
    assert [a.status_code for a in answers] == [200] * 12
    assert len({a.content for a in answers}) == 1
    assert not [p for p in library.originals.thumbnail_dir.iterdir() if p.suffix == ".tmp"]


def test_not_found_names_every_path_tried(library, folder):
    ingest_all(library, folder)
    copy = folder.parent / "copy.png"
    shutil.copy(folder / "ad2.png", copy)
    ingest_all(library, copy)
    image_id = sha_id(copy.read_bytes())
    assert library.original(image_id) == copy.read_bytes()
    (folder / "ad2.png").unlink()
    assert library.original(image_id) == copy.read_bytes()  # the second path still serves
    copy.write_bytes(b"changed")
    with pytest.raises(NotFound) as caught:
        library.original(image_id)
    assert "ad2.png" in str(caught.value) and "copy.png" in str(caught.value)


def test_a_point_the_store_refuses_fails_alone(tmp_path, settings, encoders, folder):
    """A store that cannot take one point (as a payload it cannot encode would) costs that file one
    line; the rest of its batch is stored."""
    from engine.ingest.ingestor import ingest
    from engine.store.edge import EdgeStore

    refused_id = sha_id((folder / "ad1.png").read_bytes())

    class PickyStore(EdgeStore):
        def upsert(self, points):
            if any(p.id == refused_id for p in points):
                raise ValueError("surrogates not allowed")
            super().upsert(points)

    failures: dict[str, str] = {}
    with PickyStore(tmp_path / "picky", "ads") as store:
        report = ingest([folder], settings, encoders, store, failures.__setitem__, progress=False)
        assert (report.ingested, store.count()) == (2, 2)
        assert list(failures) == [str(folder / "ad1.png")]
        assert "not stored" in failures[str(folder / "ad1.png")]
