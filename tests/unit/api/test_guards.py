"""The guards in front of every route (api/guards.py, issue #12): Host allow-list against DNS
rebinding, no writes from other sites, and the admission limit. Unit tests of the helpers, then the
real app over uvicorn on localhost ports (a small library of its own; the settings differ per server).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time

import httpx
import pytest
from helpers import free_port, png_bytes, serve

from api import create_app
from api.guards import AdmissionLimit, CrossSiteGuard, HostGuard, cross_site_reason, host_name, origin_netloc
from api.settings import ServeSettings
from engine.store import point_id

MISSING = "00000000-0000-0000-0000-000000000000"  # a well-formed id no image has: reaching the route -> 404
EVIL = "http://evil.example"


# ---------------------------------------------------------------------- helpers


def readable(truth):
    return [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]]


def state(http: httpx.Client) -> tuple[int, list[str]]:
    """What a write would change: the number of images and the upload jobs."""
    images = http.get("/health").json()["images"]
    jobs = [j["id"] for j in http.get("/api/jobs", params={"limit": 200}).json()["jobs"]]
    return images, jobs


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def guard_library(tmp_path_factory, settings, encoders, sample_dir, truth):
    """A library of its own (these tests write and change its settings): three sample ads, and
    ads.example.org among the allowed hosts."""
    from engine.library import Library

    custom = ServeSettings.serving(settings).with_overrides(
        db=tmp_path_factory.mktemp("guard-db"), allowed_hosts="ads.example.org"
    )
    library = Library(custom, encoders=encoders)
    library.ingest([sample_dir / a["file"] for a in readable(truth)[:3]])
    yield library
    library.close()


@pytest.fixture(scope="module")
def guard_port(guard_library):
    with serve(create_app(guard_library)) as port:
        yield port


@pytest.fixture
def http(guard_port):
    with httpx.Client(base_url=f"http://127.0.0.1:{guard_port}", timeout=60) as client:
        yield client


@pytest.fixture
def an_image(http) -> str:
    """The id of a stored image."""
    hits = http.get("/api/search", params={"q": "sale", "k": 1}).json()["hits"]
    assert hits
    return hits[0]["id"]


# ---------------------------------------------------------------------- helpers of api.guards


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("evil.example:8000", "evil.example"),
        ("EVIL.Example:8000", "evil.example"),
        ("evil.example", "evil.example"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("LocalHost:80", "localhost"),
        ("  ads.example.org:443 ", "ads.example.org"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("[2001:DB8::1]:443", "2001:db8::1"),
        ("::1", "::1"),  # bare IPv6 (no brackets): the colons are not a port
        ("", ""),
    ],
)
def test_host_name(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("origin", "netloc"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://Example.ORG:80", "example.org"),  # default port dropped, lower-case
        ("https://example.org:443", "example.org"),
        ("https://example.org", "example.org"),
        ("https://example.org:80", "example.org:80"),  # 80 is not https's default
        ("http://example.org:443", "example.org:443"),
        ("http://[::1]:8000", "[::1]:8000"),  # IPv6 keeps its brackets, like a Host header
        ("http://[::1]", "[::1]"),
        ("HTTP://[2001:DB8::1]:80", "[2001:db8::1]"),
        ("null", ""),  # opaque origin (sandboxed iframe, data: URL, file:)
        ("", ""),
        ("file:///etc/passwd", ""),
        ("http://example.org:99999", ""),  # unparseable port
        ("http://example.org:port", ""),
    ],
)
def test_origin_netloc(origin, netloc):
    assert origin_netloc(origin) == netloc


HOST = "127.0.0.1:8000"


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, None),  # curl, scripts
        ({"host": HOST}, None),
        ({"host": HOST, "sec-fetch-site": "same-origin", "origin": f"http://{HOST}"}, None),
        ({"host": HOST, "sec-fetch-site": "none"}, None),  # typed into the address bar, bookmarks
        ({"host": HOST, "origin": f"http://{HOST}"}, None),
        ({"host": "LOCALHOST:8000", "origin": "http://localhost:8000"}, None),
        ({"host": "[::1]:8000", "origin": "http://[::1]:8000"}, None),
        ({"host": "127.0.0.1", "origin": "http://127.0.0.1"}, None),
        ({"host": "127.0.0.1:80", "origin": "http://127.0.0.1"}, None),
        ({"host": "ads.example.org", "origin": "https://ads.example.org"}, None),  # behind a TLS proxy
        ({"host": HOST, "sec-fetch-site": "cross-site"}, "Sec-Fetch-Site is cross-site"),
        ({"host": HOST, "sec-fetch-site": "same-site"}, "Sec-Fetch-Site is same-site"),  # another port
        ({"host": HOST, "origin": EVIL}, f"Origin {EVIL}"),
        ({"host": HOST, "origin": "null"}, "Origin null"),
        ({"host": HOST, "origin": "http://127.0.0.1:8001"}, "Origin http://127.0.0.1:8001"),
        ({"host": HOST, "origin": "http://localhost:8000"}, "Origin http://localhost:8000"),
        ({"host": HOST, "origin": "http://127.0.0.1.evil.example:8000"}, "Origin"),
        ({"host": HOST, "sec-fetch-site": "same-origin", "origin": EVIL}, "Origin"),
    ],
)
def test_cross_site_reason(headers, refused):
    reason = cross_site_reason(headers)
    if refused is None:
        assert reason is None
    else:
        assert reason and reason.startswith(refused) and "accepted only from" in reason


async def _echo(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def asgi_call(app, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None):
    """One request straight into an ASGI app: (status, headers, body)."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": method, "path": path, "headers": raw, "query_string": b""}
    asyncio.run(app(scope, receive, send))
    response_headers = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
    return sent[0]["status"], response_headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_host_guard_normalises_the_allowed_names():
    guard = HostGuard(_echo, allowed=("127.0.0.1", "[::1]", "ADS.Example.org"))
    for host in ("127.0.0.1:1", "[::1]:8000", "ads.example.org", "Ads.Example.Org:8443"):
        assert asgi_call(guard, headers={"host": host})[0] == 200, host
    status, headers, body = asgi_call(guard, headers={"host": "evil.example:8000"})
    assert status == 400 and headers["content-type"] == "application/json"
    detail = json.loads(body)["detail"]
    assert "evil.example" in detail and "ads.example.org" in detail and "--allowed-hosts" in detail
    assert asgi_call(guard)[0] == 400  # no Host header at all
    anything = HostGuard(_echo, allowed=("127.0.0.1", "*"))
    assert asgi_call(anything, headers={"host": "evil.example:8000"})[0] == 200


def test_an_allowed_host_given_with_a_port_matches_and_health_answers_any_host():
    guard = HostGuard(_echo, allowed=("ads.example.org:8443",))
    assert asgi_call(guard, headers={"host": "ads.example.org:8443"})[0] == 200
    assert asgi_call(guard, headers={"host": "evil.example"})[0] == 400
    assert asgi_call(guard, path="/health", headers={"host": "10.0.0.7:8000"})[0] == 200  # probes by IP
    assert asgi_call(guard, path="/api/stats", headers={"host": "10.0.0.7:8000"})[0] == 400


def test_an_origin_matches_its_host_only_with_its_own_scheme_default_port():
    same = {"host": "ads.example.org:443", "origin": "https://ads.example.org"}
    assert cross_site_reason(same) is None
    assert cross_site_reason({"host": "ads.example.org:443", "origin": "http://ads.example.org"})
    assert cross_site_reason({"host": "ads.example.org", "origin": "http://ads.example.org:80"}) is None


def test_cross_site_guard_lets_reads_and_preflights_through():
    guard = CrossSiteGuard(_echo)
    foreign = {"host": HOST, "origin": EVIL, "sec-fetch-site": "cross-site"}
    for method in ("GET", "HEAD", "OPTIONS"):
        assert asgi_call(guard, method, headers=foreign)[0] == 200, method
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        status, _, body = asgi_call(guard, method, headers=foreign)
        assert status == 403, method
        assert json.loads(body)["detail"].startswith("cross-site request refused: ")
    assert asgi_call(guard, "POST", headers={"host": HOST})[0] == 200


def test_admission_limit_refuses_at_once_and_frees_its_slots():
    """Deterministic: the first request waits on an event inside the app."""

    async def scenario():
        release = asyncio.Event()

        async def app(scope, receive, send):
            if scope["path"] == "/slow":
                await release.wait()
            await _echo(scope, receive, send)

        limit = AdmissionLimit(app, limit=1)

        async def call(path: str) -> tuple[int, dict[str, str], bytes]:
            sent = []

            async def send(message):
                sent.append(message)

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            await limit({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
            headers = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
            return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])

        held = asyncio.create_task(call("/slow"))
        for _ in range(100):
            await asyncio.sleep(0)
            if limit.active:
                break
        assert limit.active == 1
        status, headers, body = await asyncio.wait_for(call("/api/search"), timeout=1)
        assert status == 503 and headers["retry-after"] == "1" and b"busy" in body
        for path in ("/health", "/static/style.css", "/api/jobs", "/api/jobs/abc", "/jobs/abc",
                     f"/api/images/{MISSING}/thumbnail", f"/api/images/{MISSING}/file"):  # fmt: skip
            assert (await asyncio.wait_for(call(path), timeout=1))[0] == 200, path
        assert limit.active == 1  # exempt paths take no slot
        release.set()
        assert (await held)[0] == 200
        assert limit.active == 0
        assert (await call("/api/search"))[0] == 200

        async def failing(scope, receive, send):
            raise RuntimeError("boom")

        broken = AdmissionLimit(failing, limit=1)
        with pytest.raises(RuntimeError):
            await broken({"type": "http", "path": "/x", "method": "GET", "headers": []}, None, None)
        assert broken.active == 0  # an exception gives the slot back

    asyncio.run(scenario())


def guarded_call(limit: AdmissionLimit, chunks: list[bytes], length: int | None = None, stall: bool = False):
    """One POST into `limit` (its app replaced by one that reads the body) whose body arrives in
    `chunks` (then, with `stall`, nothing more ever): (status, answer body, what the app read or None
    when it never ran, occupancy seen while receiving)."""
    seen: dict = {}

    async def scenario():
        read: list[dict] = []
        ran = False

        async def app(scope, receive, send):
            nonlocal ran
            ran = True
            while True:
                message = await receive()
                read.append(message)
                if not message.get("more_body"):
                    break
            read.append(await receive())  # after the body: what the client does next
            await _echo(scope, receive, send)

        limit.app = app
        queue = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
        if not stall:
            queue[-1]["more_body"] = False
        sent = []

        async def receive():
            if queue:
                seen.setdefault("during", dict(vars(limit.occupancy)))
                await asyncio.sleep(0)
                return queue.pop(0)
            if stall:
                await asyncio.Event().wait()  # a client that never sends the rest
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        size = sum(map(len, chunks)) if length is None else length
        scope = {"type": "http", "method": "POST", "path": "/api/search", "query_string": b"",
                 "headers": [(b"content-length", str(size).encode())]}  # fmt: skip
        await asyncio.wait_for(limit(scope, receive, send), timeout=10)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), read if ran else None

    status, body, read = asyncio.run(scenario())
    return status, body, read, seen.get("during")


def test_a_body_is_read_whole_before_the_request_takes_its_slot_and_replayed_intact():
    limit = AdmissionLimit(_echo, limit=1)
    small = [b'{"q": ', b'"sale"}']
    status, _, read, during = guarded_call(limit, small)
    assert status == 200 and during["receiving"] == 1 and during["active"] == 0
    assert read == [{"type": "http.request", "body": b'{"q": "sale"}', "more_body": False},
                    {"type": "http.disconnect"}]  # fmt: skip
    large = [bytes([i]) * n for i, n in enumerate([1, 300_000, 7, 2**20 + 3, 0, 99_999])]
    status, _, read, during = guarded_call(limit, large)
    assert status == 200 and during["uploading"] == 1 and during["active"] == 0  # by its Content-Length
    assert b"".join(m.get("body", b"") for m in read) == b"".join(large)
    assert [m.get("more_body") for m in read[:-1]] == [True] * (len(read) - 2) + [False]
    assert read[-1] == {"type": "http.disconnect"}
    assert vars(limit.occupancy) == {"limit": 1, "active": 0, "receiving": 0, "uploading": 0, "shed": 0}


def test_a_body_that_stops_arriving_gets_408_and_frees_its_place():
    limit = AdmissionLimit(_echo, limit=1)
    limit.body_timeout, limit.min_body_rate = 0.2, 2**40  # 0.2 s, whatever the size
    for chunks, length in (([b'{"q": '], 100), ([b"x" * 300_000], 10**6)):  # small, and an upload
        status, body, read, _ = guarded_call(limit, chunks, length, stall=True)
        assert status == 408 and read is None  # the app never ran
        assert b"too slow" in body
        assert vars(limit.occupancy) == {"limit": 1, "active": 0, "receiving": 0, "uploading": 0, "shed": 0}


def test_a_body_over_the_limit_gets_413_as_soon_as_that_shows():
    limit = AdmissionLimit(_echo, limit=1, max_body=1000)
    assert guarded_call(limit, [b"x" * 10], length=1001)[:3:2] == (413, None)  # by its Content-Length
    assert guarded_call(limit, [b"x" * 600, b"x" * 600], length=1000)[:3:2] == (413, None)  # by its bytes
    assert guarded_call(limit, [b"x" * 1000])[0] == 200
    assert vars(limit.occupancy) == {"limit": 1, "active": 0, "receiving": 0, "uploading": 0, "shed": 0}


def test_the_guards_pass_lifespan_events_through():
    """The lifespan scope has no path: a guard that reads it first breaks the app's startup."""
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    for guard in (AdmissionLimit(app, limit=1), CrossSiteGuard(app), HostGuard(app, allowed=("127.0.0.1",))):
        asyncio.run(guard({"type": "lifespan", "asgi": {"version": "3.0"}}, None, None))
    assert seen == ["lifespan"] * 3


def test_the_app_starts_with_its_lifespan(guard_library):
    """create_app's lifespan starts the upload runner (resuming uploads a previous run accepted);
    with lifespan='on' uvicorn refuses to start when the lifespan fails."""
    with serve(create_app(guard_library), lifespan="on") as port:
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=60).status_code == 200


# ---------------------------------------------------------------------- settings and flags


def test_allowed_hosts_parsing_and_served_hosts(monkeypatch):
    monkeypatch.delenv("ADSEARCH_ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("ADSEARCH_HOST", raising=False)
    assert ServeSettings().served_hosts() == ("127.0.0.1", "localhost", "::1")
    parsed = ServeSettings(allowed_hosts=" Ads.Example.org, other.example ,,ads.example.org")
    assert parsed.allowed_hosts == ("ads.example.org", "other.example")
    assert ServeSettings(allowed_hosts=["A.example", "a.example"]).allowed_hosts == ("a.example",)
    assert ServeSettings(host="0.0.0.0").served_hosts() == ("127.0.0.1", "localhost", "::1")  # not a name
    assert ServeSettings(host="::").served_hosts() == ("127.0.0.1", "localhost", "::1")
    lan = ServeSettings(host="192.168.1.5", allowed_hosts="ads.example.org").served_hosts()
    assert lan == ("127.0.0.1", "localhost", "::1", "192.168.1.5", "ads.example.org")
    assert "::1" in ServeSettings(host="[::1]").served_hosts()
    monkeypatch.setenv("ADSEARCH_ALLOWED_HOSTS", "ads.example.org,*")
    assert ServeSettings().allowed_hosts == ("ads.example.org", "*")
    assert "*" in ServeSettings().served_hosts()


def test_allowed_hosts_flag(monkeypatch):
    from engine.cli import build_parser, settings_of

    monkeypatch.delenv("ADSEARCH_ALLOWED_HOSTS", raising=False)
    args = build_parser().parse_args(["serve", "--allowed-hosts", "Ads.Example.org,other.example"])
    settings = settings_of(args, ServeSettings)
    assert settings.allowed_hosts == ("ads.example.org", "other.example")
    assert {"ads.example.org", "other.example"} <= set(settings.served_hosts())


# ---------------------------------------------------------------------- DNS rebinding over HTTP


def test_dns_rebinding_default_server(api_server):
    """The default settings (no allowed hosts): a rebound name is turned away on every route; the
    loopback names are answered."""
    port = api_server.rsplit(":", 1)[1]
    with httpx.Client(base_url=api_server, timeout=60) as http:
        expected = http.get("/api/stats").json()
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
            answer = http.get("/api/stats", headers={"Host": host})
            assert answer.status_code == 200, host
            assert answer.json() == expected
        for path in ("/api/stats", "/", "/upload", "/api/search?q=sale", f"/api/images/{MISSING}/file"):
            refused = http.get(path, headers={"Host": f"evil.example:{port}"})
            assert refused.status_code == 400, path
            detail = refused.json()["detail"]
            assert "evil.example" in detail and "--allowed-hosts" in detail
            assert "ADSEARCH_ALLOWED_HOSTS" in detail
            assert "images" not in refused.json()
        for host in ("evil.example", f"ads.example.org:{port}", f"127.0.0.1.evil.example:{port}", ""):
            assert http.get("/api/stats", headers={"Host": host}).status_code == 400, host


def test_dns_rebinding_with_allowed_hosts(http, guard_port):
    for host in (f"ads.example.org:{guard_port}", "ads.example.org", f"ADS.Example.ORG:{guard_port}",
                 f"127.0.0.1:{guard_port}", f"[::1]:{guard_port}"):  # fmt: skip
        answer = http.get("/api/stats", headers={"Host": host})
        assert answer.status_code == 200, host
        assert answer.json()["images"] == 3
    for host in (f"evil.example:{guard_port}", f"ads.example.org.evil.example:{guard_port}",
                 f"www.ads.example.org:{guard_port}"):  # fmt: skip
        refused = http.get("/api/stats", headers={"Host": host})
        assert refused.status_code == 400, host
        detail = refused.json()["detail"]
        assert "ads.example.org" in detail and "--allowed-hosts" in detail


def test_the_host_check_comes_before_the_write_checks(http, guard_port):
    """A rebound name is refused with 400 even for a write that would pass the cross-site check."""
    before = state(http)
    refused = http.post(
        "/api/images?wait=true",
        files=[("files", ("x.png", png_bytes(), "image/png"))],
        headers={
            "Host": f"evil.example:{guard_port}",
            "Origin": f"http://evil.example:{guard_port}",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert refused.status_code == 400
    assert state(http) == before


# ---------------------------------------------------------------------- cross-site writes over HTTP


def test_cross_site_uploads_are_refused_and_nothing_is_ingested(http, guard_port):
    data = png_bytes()
    before = state(http)
    foreign = [
        {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        {"Origin": EVIL},  # an older browser: Origin only
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": f"http://127.0.0.1:{free_port()}", "Sec-Fetch-Site": "same-site"},  # another port
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},  # sandboxed iframe, data: URL
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    ]
    for headers in foreign:
        for path in ("/api/images?wait=true", "/upload"):  # the JSON route and the page's form
            refused = http.post(path, files=[("files", ("ad.png", data, "image/png"))], headers=headers)
            assert refused.status_code == 403, (path, headers)
            assert refused.json()["detail"].startswith("cross-site request refused: "), (path, headers)
    assert state(http) == before  # no image, no job
    assert http.get(f"/api/images/{point_id(hashlib.sha256(data).hexdigest())}").status_code == 404


def test_cross_site_delete_is_refused_and_the_image_stays(http, an_image):
    before = http.get(f"/api/images/{an_image}").json()
    for headers in (
        {"Origin": EVIL},
        {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
    ):
        refused = http.delete(f"/api/images/{an_image}", headers=headers)
        assert refused.status_code == 403, headers
        assert "cross-site request refused" in refused.json()["detail"]
    assert http.get(f"/api/images/{an_image}").json() == before


def test_same_origin_writes_are_accepted(http, guard_port):
    data = png_bytes()
    own = {"Origin": f"http://127.0.0.1:{guard_port}", "Sec-Fetch-Site": "same-origin"}
    images, _ = state(http)
    files = [("files", ("own.png", data, "image/png"))]
    answer = http.post("/api/images?wait=true", files=files, headers=own)
    assert answer.status_code == 200
    result = answer.json()["results"][0]
    assert result["status"] == "ingested"
    assert state(http)[0] == images + 1
    deleted = http.delete(f"/api/images/{result['id']}", headers=own)
    assert deleted.status_code == 200 and deleted.json()["deleted"]
    assert state(http)[0] == images


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl
        {"Sec-Fetch-Site": "none"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Host": "localhost:{port}", "Origin": "http://localhost:{port}", "Sec-Fetch-Site": "same-origin"},
        {"Host": "[::1]:{port}", "Origin": "http://[::1]:{port}", "Sec-Fetch-Site": "same-origin"},
        {"Host": "ads.example.org", "Origin": "https://ads.example.org"},  # behind a TLS proxy
        {"Host": "ads.example.org:{port}", "Origin": "http://ADS.example.org:{port}"},
    ],
)
def test_writes_without_foreign_headers_reach_the_route(http, guard_port, headers):
    headers = {k: v.format(port=guard_port) for k, v in headers.items()}
    answer = http.delete(f"/api/images/{MISSING}", headers=headers)
    assert answer.status_code == 404  # the route ran (no such image), not 403
    assert "no image" in answer.json()["detail"]


def test_a_non_get_read_without_browser_headers_is_answered(http, sample_dir, truth):
    """POST /api/search/image is a read by POST: curl-like clients keep it."""
    ad = readable(truth)[0]
    files = {"file": ("q.png", (sample_dir / ad["file"]).read_bytes())}
    assert http.post("/api/search/image", files=files).status_code == 200
    foreign = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    assert http.post("/api/search/image", files=files, headers=foreign).status_code == 403


def test_reads_from_other_sites_are_answered_without_cors(http, an_image):
    foreign = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    paths = ("/api/stats", "/api/search?q=sale", f"/api/images/{an_image}", f"/api/images/{an_image}/file")
    for path in paths:
        answer = http.get(path, headers=foreign)
        assert answer.status_code == 200, path
        assert not any(h.startswith("access-control-") for h in answer.headers), path
    preflight = http.options(
        f"/api/images/{an_image}",
        headers={**foreign, "Access-Control-Request-Method": "DELETE"},
    )
    assert preflight.status_code != 200  # no CORS: the browser never sends the DELETE
    assert not any(h.startswith("access-control-") for h in preflight.headers)


def test_the_api_key_does_not_make_a_cross_site_write_acceptable(http, guard_library, an_image):
    original = guard_library.settings
    guard_library.settings = original.with_overrides(api_key="s3cret")
    try:
        before = state(http)
        key = {"X-API-Key": "s3cret"}
        foreign = {**key, "Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
        files = [("files", ("k.png", png_bytes()))]
        assert http.post("/api/images?wait=true", files=files, headers=foreign).status_code == 403
        assert http.delete(f"/api/images/{an_image}", headers=foreign).status_code == 403
        assert http.delete(f"/api/images/{an_image}", headers={**key, "Origin": EVIL}).status_code == 403
        assert http.get(f"/api/images/{an_image}").status_code == 200
        assert state(http) == before
        # the key check itself still runs for requests that pass the guard
        assert http.delete(f"/api/images/{MISSING}").status_code == 401
        assert http.delete(f"/api/images/{MISSING}", headers=key).status_code == 404
    finally:
        guard_library.settings = original


# ---------------------------------------------------------------------- overload over HTTP


def limited_app(guard_library, slots: int):
    """A second app over the same library with max_concurrent_requests=`slots` (read at create_app)."""
    original = guard_library.settings
    guard_library.settings = original.with_overrides(max_concurrent_requests=slots)
    try:
        return create_app(guard_library)
    finally:
        guard_library.settings = original


@pytest.fixture
def limited(guard_library):
    """An app with one request slot, no lifespan (it leaves the library's upload runner alone):
    (port, app)."""
    app = limited_app(guard_library, 1)
    with serve(app, lifespan="off") as port:
        yield port, app


def admission(app) -> AdmissionLimit:
    """The app's AdmissionLimit instance (the middleware stack is built at the first request)."""
    layer = app.middleware_stack
    while not isinstance(layer, AdmissionLimit):
        layer = layer.app
    return layer


def settle(limit: AdmissionLimit, active: int, timeout: float = 10, what: str = "active") -> None:
    """Wait until `active` requests are in progress (or, with `what`, another Occupancy count). A
    slot is given back just after the response is sent, so a client that asks again at once may find
    it still taken; these tests wait for it."""
    deadline = time.time() + timeout
    while getattr(limit.occupancy, what) != active:
        assert time.time() < deadline, f"{getattr(limit.occupancy, what)} {what}, expected {active}"
        time.sleep(0.01)


class HeldSearches:
    """Searches that compute until released: the library's search waits on an event (a request
    that holds its slot for as long as a test needs, whatever the machine's speed)."""

    def __init__(self, library, monkeypatch):
        self.release, self.entered = threading.Event(), threading.Semaphore(0)
        original = library.search

        def search(*args, **kwargs):
            self.entered.release()
            assert self.release.wait(60), "a held search was never released"
            return original(*args, **kwargs)

        monkeypatch.setattr(library, "search", search)
        self.threads: list[threading.Thread] = []
        self.answers: list[httpx.Response] = []

    def start(self, port: int, n: int = 1) -> None:
        """`n` searches that reach the library (and stay there)."""
        url = f"http://127.0.0.1:{port}{SEARCH}"
        for _ in range(n):
            thread = threading.Thread(target=lambda: self.answers.append(httpx.get(url, timeout=60)))
            thread.start()
            self.threads.append(thread)
        for _ in range(n):
            assert self.entered.acquire(timeout=30), "a held search did not reach the library"

    def finish(self) -> list[httpx.Response]:
        self.release.set()
        for thread in self.threads:
            thread.join(timeout=60)
        return self.answers


class RawRequest:
    """A request over a raw socket whose body is sent when and as slowly as a test says."""

    def __init__(self, port: int, path: str, length: int, content_type: str = "application/json"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {length}\r\n\r\n")  # fmt: skip
        self.sock.sendall(head.encode())

    def send(self, data: bytes) -> bool:
        """Send `data`; False once the server has closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def answer(self) -> bytes:
        """What the server answered, up to its closing the connection."""
        chunks = []
        try:
            while chunk := self.sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


SEARCH = "/api/search?q=sale"
# Seconds a test's server gives a request body (BODY_TIMEOUT in production): long while a test checks
# what happens meanwhile (on a busy machine too), then short; the guard reads it at every chunk.
PATIENT = 120.0


def hurry(limit: AdmissionLimit) -> None:
    """Make every body arriving at `limit` late from its next chunk on."""
    limit.body_timeout, limit.min_body_rate = 0.0, 2**40


def test_overload_gets_503_at_once_while_health_and_jobs_answer(limited, guard_library, monkeypatch):
    port, app = limited
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        assert http.get(SEARCH).status_code == 200  # one at a time is fine
        limit = admission(app)
        settle(limit, 0)
        ready = http.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        held = HeldSearches(guard_library, monkeypatch)
        held.start(port)
        try:
            settle(limit, 1)  # the held request computes
            busy = http.get(SEARCH)
            # answered while the held request still holds the only slot: refused, not queued behind it
            assert busy.status_code == 503 and not held.release.is_set() and limit.occupancy.active == 1
            assert busy.headers["retry-after"] == "1"
            assert "busy" in busy.json()["detail"]
            assert http.get("/").status_code == 503  # pages count too
            assert http.post("/api/search", json={"q": "sale"}).status_code == 503
            refused_write = http.post("/api/images", files=[("files", ("a.png", png_bytes()))])
            assert refused_write.status_code == 503
            health = http.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert health.json()["saturated"] is True
            assert health.json()["requests_in_progress"] == health.json()["request_limit"] == 1
            ready = http.get("/health/ready", headers={"Host": "10.0.0.7"})  # probes by address
            assert ready.status_code == 503 and ready.json()["ready"] is False
            assert http.get("/api/jobs").status_code == 200
            assert http.get(f"/api/jobs/{'0' * 32}").status_code == 404  # exempt: the route answers
            assert http.get(f"/jobs/{'0' * 32}").status_code == 404
            assert http.get("/static/style.css").status_code == 200
            assert limit.active == 1
        finally:
            answers = held.finish()
        assert [a.status_code for a in answers] == [200]  # the held request completes normally
        assert "hits" in answers[0].json()
        settle(limit, 0)
        assert http.get(SEARCH).status_code == 200
        health = http.get("/health").json()
        assert health["saturated"] is False and health["requests_in_progress"] == 0
        assert http.get("/health/ready").status_code == 200


def test_slow_bodies_take_no_slot_and_get_408(guard_library):
    """Four clients (as many as the slots) that send a search's headers, then its body a byte at a
    time: searches keep being answered, and each slow client gets 408 once past the deadline."""
    app = limited_app(guard_library, 4)
    with serve(app, lifespan="off") as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        assert http.get(SEARCH).status_code == 200
        limit = admission(app)
        limit.body_timeout = PATIENT
        slow = [RawRequest(port, "/api/search", 1000) for _ in range(4)]
        try:
            for client in slow:
                client.send(b"{")
            settle(limit, 4, what="receiving")  # every slow body is arriving, none holds a slot
            for _ in range(3):
                for client in slow:
                    client.send(b" ")
                assert http.get(SEARCH).status_code == 200
                assert http.post("/api/search", json={"q": "sale", "k": 2}).status_code == 200
                health = http.get("/health").json()
                assert health["saturated"] is False and health["bodies_arriving"] == 4
                assert http.get("/health/ready").status_code == 200
            hurry(limit)  # the deadline has passed: the next byte is too late
            for client in slow:
                client.send(b" ")
            answers = [client.answer() for client in slow]
        finally:
            for client in slow:
                client.close()
        for answer in answers:
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"too slow" in answer
        settle(limit, 0, what="receiving")
        assert limit.active == 0
        assert http.get(SEARCH).status_code == 200


def test_a_slow_upload_takes_no_search_slot_and_large_bodies_have_their_own_limit(guard_library):
    """A large body (an upload) stalls after its first part: searches go on; with one slot, a second
    large body at the same time gets 503; the stalled one gets 408 and frees its place."""
    app = limited_app(guard_library, 1)
    boundary = "b0undary"
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()  # fmt: skip
    with serve(app, lifespan="off") as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        assert http.get(SEARCH).status_code == 200
        limit = admission(app)
        limit.body_timeout = PATIENT
        kind = f"multipart/form-data; boundary={boundary}"
        stalled = RawRequest(port, "/api/images", 3 * 2**20, kind)
        try:
            stalled.send(part + b"\0" * 300_000)  # more than fits in memory, far from all of it
            settle(limit, 1, what="uploading")
            assert http.get(SEARCH).status_code == 200
            assert http.get("/health").json()["saturated"] is False
            second = http.post("/api/images", files=[("files", ("big.png", b"\0" * 400_000))])
            assert second.status_code == 503 and "uploads arriving" in second.json()["detail"]
            hurry(limit)
            stalled.send(b"\0" * 1000)
            answer = stalled.answer()
        finally:
            stalled.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        settle(limit, 0, what="uploading")
        assert limit.active == 0
        assert http.get(SEARCH).status_code == 200


def test_a_client_that_disconnects_gives_its_places_back(limited, guard_library, monkeypatch):
    port, app = limited
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        assert http.get(SEARCH).status_code == 200
        limit = admission(app)
        settle(limit, 0)
        gone = RawRequest(port, "/api/search", 1000)  # leaves half-way through its body
        gone.send(b'{"q": ')
        settle(limit, 1, what="receiving")
        assert http.get(SEARCH).status_code == 200
        gone.close()
        settle(limit, 0, what="receiving")
        held = HeldSearches(guard_library, monkeypatch)
        computing = RawRequest(port, "/api/search", len(b'{"q": "sale"}'))
        computing.send(b'{"q": "sale"}')
        assert held.entered.acquire(timeout=30)
        settle(limit, 1)
        assert http.get(SEARCH).status_code == 503
        computing.close()  # leaves while its search computes: the slot is back when it ends
        held.finish()
        settle(limit, 0)
        assert http.get(SEARCH).status_code == 200
        for path in (
            f"/api/images/{MISSING}",
            "/api/search?q=sale&where=colour=red",
            "/api/search?q=sale&k=0",
        ):
            assert http.get(path).status_code in (404, 422)
            settle(limit, 0)  # error answers give their slot back too
        assert http.get(SEARCH).status_code == 200
