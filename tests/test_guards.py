"""The guards in front of every route (api/guards.py, issue #12): Host allow-list against DNS
rebinding, no writes from other sites, and the admission limit. Unit tests of the helpers, then the
real app over uvicorn on localhost ports (a small library of its own; the settings differ per server).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time

import httpx
import pytest
from helpers import free_port, png_bytes, serve

from api import create_app
from api.guards import AdmissionLimit, CrossSiteGuard, HostGuard, cross_site_reason, host_name, origin_netloc
from engine.config import Settings
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

    custom = settings.with_overrides(db=tmp_path_factory.mktemp("guard-db"), allowed_hosts="ads.example.org")
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
    assert Settings().served_hosts() == ("127.0.0.1", "localhost", "::1")
    parsed = Settings(allowed_hosts=" Ads.Example.org, other.example ,,ads.example.org")
    assert parsed.allowed_hosts == ("ads.example.org", "other.example")
    assert Settings(allowed_hosts=["A.example", "a.example"]).allowed_hosts == ("a.example",)
    assert Settings(host="0.0.0.0").served_hosts() == ("127.0.0.1", "localhost", "::1")  # not a name
    assert Settings(host="::").served_hosts() == ("127.0.0.1", "localhost", "::1")
    lan = Settings(host="192.168.1.5", allowed_hosts="ads.example.org").served_hosts()
    assert lan == ("127.0.0.1", "localhost", "::1", "192.168.1.5", "ads.example.org")
    assert "::1" in Settings(host="[::1]").served_hosts()
    monkeypatch.setenv("ADSEARCH_ALLOWED_HOSTS", "ads.example.org,*")
    assert Settings().allowed_hosts == ("ads.example.org", "*")
    assert "*" in Settings().served_hosts()


def test_allowed_hosts_flag(monkeypatch):
    from engine.cli import _settings, build_parser

    monkeypatch.delenv("ADSEARCH_ALLOWED_HOSTS", raising=False)
    args = build_parser().parse_args(["serve", "--allowed-hosts", "Ads.Example.org,other.example"])
    settings = _settings(args)
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


@pytest.fixture
def limited(guard_library):
    """A second app over the same library with max_concurrent_requests=1 (read at create_app), no
    lifespan (it leaves the library's upload runner alone): (port, app)."""
    original = guard_library.settings
    guard_library.settings = original.with_overrides(max_concurrent_requests=1)
    try:
        app = create_app(guard_library)
    finally:
        guard_library.settings = original
    with serve(app, lifespan="off") as port:
        yield port, app


def admission(app) -> AdmissionLimit:
    """The app's AdmissionLimit instance (the middleware stack is built at the first request)."""
    layer = app.middleware_stack
    while not isinstance(layer, AdmissionLimit):
        layer = layer.app
    return layer


def settle(limit: AdmissionLimit, active: int, timeout: float = 10) -> None:
    """Wait until `active` requests are in progress. A slot is given back just after the response
    is sent, so a client that asks again at once may find it still taken; these tests wait for it."""
    deadline = time.time() + timeout
    while limit.active != active:
        assert time.time() < deadline, f"{limit.active} requests in progress, expected {active}"
        time.sleep(0.01)


class SlowUpload:
    """POST /api/search/image over a raw socket whose multipart body is sent in two halves: between
    them the request is in progress (the app is waiting for the rest of the body)."""

    BOUNDARY = "guard-test-boundary"

    def __init__(self, port: int, image: bytes):
        head = (f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="q.png"\r\n'
                "Content-Type: image/png\r\n\r\n").encode()  # fmt: skip
        self.rest = image + f"\r\n--{self.BOUNDARY}--\r\n".encode()
        request = (
            f"POST /api/search/image HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={self.BOUNDARY}\r\n"
            f"Content-Length: {len(head) + len(self.rest)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(request + head)

    def finish(self) -> bytes:
        self.sock.sendall(self.rest)
        chunks = []
        while chunk := self.sock.recv(65536):
            chunks.append(chunk)
        self.sock.close()
        return b"".join(chunks)

    def abandon(self) -> None:
        self.sock.close()


SEARCH = "/api/search?q=sale"


def test_overload_gets_503_at_once_while_health_and_jobs_answer(limited, sample_dir, truth):
    port, app = limited
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        assert http.get(SEARCH).status_code == 200  # one at a time is fine
        limit = admission(app)
        settle(limit, 0)
        held = SlowUpload(port, (sample_dir / readable(truth)[0]["file"]).read_bytes())
        try:
            settle(limit, 1)  # the held request is in the app, waiting for the rest of its body
            started = time.perf_counter()
            busy = http.get(SEARCH)
            assert busy.status_code == 503
            assert time.perf_counter() - started < 2  # at once, not queued behind the held request
            assert busy.headers["retry-after"] == "1"
            assert "busy" in busy.json()["detail"]
            assert http.get("/").status_code == 503  # pages count too
            refused_write = http.post("/api/images", files=[("files", ("a.png", png_bytes()))])
            assert refused_write.status_code == 503
            health = http.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert http.get("/api/jobs").status_code == 200
            assert http.get(f"/api/jobs/{'0' * 32}").status_code == 404  # exempt: the route answers
            assert http.get(f"/jobs/{'0' * 32}").status_code == 404
            assert http.get("/static/style.css").status_code == 200
            assert limit.active == 1
        finally:
            answer = held.finish()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]  # the held request completes normally
        assert b'"hits"' in answer
        settle(limit, 0)
        assert http.get(SEARCH).status_code == 200


def test_a_client_that_disconnects_gives_its_slot_back(limited, sample_dir, truth):
    port, app = limited
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        assert http.get(SEARCH).status_code == 200
        limit = admission(app)
        settle(limit, 0)
        held = SlowUpload(port, (sample_dir / readable(truth)[0]["file"]).read_bytes())
        settle(limit, 1)
        assert http.get(SEARCH).status_code == 503
        held.abandon()
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
