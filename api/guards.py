"""ASGI guards in front of every route: allowed Host names (DNS rebinding), no writes from other
sites (cross-site request forgery), and a bound on the work in progress (overload) that slow
clients cannot take (request bodies arrive within a deadline, before a request takes its slot)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": "80", "https": "443"}
HEALTH_PATHS = ("/health", "/health/ready")  # answered for any Host: probes often connect by address

# Request bodies (AdmissionLimit). A body has BODY_TIMEOUT seconds, plus one second for every
# MIN_BODY_RATE bytes that have arrived, to arrive whole: a client that trickles gets 408. Bodies up
# to SMALL_BODY bytes (searches, forms, small image queries) are read into memory, any number at
# once; a larger one (uploads) is spooled to a temporary file and at most `limit` of them are read at
# once (the excess gets 503). Only then does the request take one of the `limit` slots to compute.
BODY_TIMEOUT = 10.0
MIN_BODY_RATE = 16 * 1024
SMALL_BODY = 256 * 1024
REPLAY_CHUNK = 1 << 20  # bytes per message when the spooled body is handed to the app
# uvicorn's own limits, set by `adsearch serve` (api/command.py): idle keep-alive connections are
# closed after 5 s, a request head may not exceed 16 KiB, shutdown waits at most 10 s for requests.
UVICORN_LIMITS = {"timeout_keep_alive": 5, "h11_max_incomplete_event_size": 16 * 1024,
                  "timeout_graceful_shutdown": 10}  # fmt: skip


def host_name(host_header: str) -> str:
    """The name in a Host header, lower-case, without port or IPv6 brackets."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def origin_netloc(origin: str) -> str:
    """'http://Example.org:80' -> 'example.org' (host[:port], default ports dropped); '' when the
    Origin is opaque ('null') or unparseable."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return ""
    if not parts.hostname:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host if port is None or str(port) == DEFAULT_PORTS.get(parts.scheme) else f"{host}:{port}"


def _host_netloc(host_header: str, scheme: str) -> str:
    """A Host header as origin_netloc would write it for an origin with `scheme`."""
    host = host_header.strip().lower()
    default = DEFAULT_PORTS.get(scheme)
    return host.removesuffix(f":{default}") if default else host


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _refuse(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class HostGuard:
    """400 for a Host header that is not one of `allowed` ('*' allows any): a page on a rebound
    domain reaches the server under its own name and is turned away."""

    def __init__(self, app, allowed: tuple[str, ...]):
        self.app = app
        self.allowed = frozenset(host_name(h) for h in allowed)  # 'name:8443' and '[::1]' -> name

    async def __call__(self, scope, receive, send) -> None:
        # health is left out: it reveals only counts, and probes often connect by IP address
        if scope["type"] == "http" and "*" not in self.allowed and scope["path"] not in HEALTH_PATHS:
            host = host_name(_headers(scope).get("host", ""))
            if host not in self.allowed:
                detail = (f"host '{host}' is not served here (allowed: {', '.join(sorted(self.allowed))}); "
                          "add it with --allowed-hosts or ADSEARCH_ALLOWED_HOSTS")  # fmt: skip
                await _refuse(send, 400, detail)
                return
        await self.app(scope, receive, send)


class CrossSiteGuard:
    """403 for a state-changing request (any method but GET/HEAD/OPTIONS) that a browser sent from
    another origin: `Sec-Fetch-Site` other than same-origin/none, or an `Origin` that is not this
    server's own. Requests without either header (curl, scripts) pass."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            reason = cross_site_reason(_headers(scope))
            if reason:
                await _refuse(send, 403, f"cross-site request refused: {reason}")
                return
        await self.app(scope, receive, send)


def cross_site_reason(headers: dict[str, str]) -> str | None:
    """Why a write with these headers comes from another site, or None."""
    site = headers.get("sec-fetch-site")
    if site and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {site}; writes are accepted only from this server's own pages"
    origin = headers.get("origin")
    scheme = origin.strip().lower().partition("://")[0] if origin else ""
    if origin is not None and origin_netloc(origin) != _host_netloc(headers.get("host", ""), scheme):
        return f"Origin {origin} is not this server; writes are accepted only from its own pages"
    return None


@dataclass
class Occupancy:
    """What the server is doing, as /health reports it: requests computing (`active`, at most
    `limit`), small bodies arriving (`receiving`), large bodies arriving (`uploading`, at most
    `limit`); and, for /metrics, the requests answered 503 because of them since start (`shed`)."""

    limit: int
    active: int = 0
    receiving: int = 0
    uploading: int = 0
    shed: int = 0

    @property
    def saturated(self) -> bool:
        """Every slot is taken: the next request that has to compute gets 503."""
        return self.active >= self.limit

    def public(self) -> dict:
        return {"requests_in_progress": self.active, "request_limit": self.limit, "saturated": self.saturated,
                "bodies_arriving": self.receiving + self.uploading}  # fmt: skip


class _Spool:
    """A request body as it arrives: in memory up to SMALL_BODY bytes, then in a temporary file
    (written and read in a worker thread)."""

    def __init__(self) -> None:
        self.memory = bytearray()
        self.file = None
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.file is None and len(self.memory) + len(chunk) <= SMALL_BODY:
            self.memory += chunk
            return
        if self.file is None:
            self.file = await run_in_threadpool(tempfile.TemporaryFile)
            chunk, self.memory = bytes(self.memory) + chunk, bytearray()
        await run_in_threadpool(self.file.write, chunk)

    async def messages(self):
        """The body as ASGI http.request messages (the last with more_body False)."""
        if self.file is None:
            yield {"type": "http.request", "body": bytes(self.memory), "more_body": False}
            return
        await run_in_threadpool(self.file.seek, 0)
        left = self.size
        while True:
            chunk = await run_in_threadpool(self.file.read, min(REPLAY_CHUNK, left))
            left -= len(chunk)
            yield {"type": "http.request", "body": chunk, "more_body": left > 0 and bool(chunk)}
            if left <= 0 or not chunk:
                return

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.memory = bytearray()


def _replay(spool: _Spool, receive):
    """An ASGI receive that hands the app the spooled body, then passes on what the client does next
    (a disconnect)."""
    messages = spool.messages()

    async def replay():
        nonlocal messages
        if messages is not None:
            message = await anext(messages, None)
            if message is not None:
                if not message["more_body"]:
                    messages = None
                return message
            messages = None
        return await receive()

    return replay


def _has_body(headers: dict[str, str]) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


def _content_length(headers: dict[str, str]) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


class AdmissionLimit:
    """At most `limit` requests in progress; the next one gets 503 with Retry-After at once instead
    of waiting in a queue that would make every answer late. Cheap answers are never refused: paths
    under `exempt` (health, static files, job status, metrics) and image files and thumbnails, which
    a results page loads by the dozen.

    A request takes its slot only once its body has arrived (see BODY_TIMEOUT, MIN_BODY_RATE,
    SMALL_BODY): clients that send a body slowly, or never finish it, hold no slot and get 408 after
    the deadline; bodies over `max_body` bytes get 413 as soon as that shows."""

    def __init__(
        self,
        app,
        limit: int,
        exempt: tuple[str, ...] = ("/health", "/static/", "/api/jobs", "/jobs/", "/metrics"),
        exempt_endings: tuple[str, ...] = ("/thumbnail", "/file"),
        occupancy: Occupancy | None = None,
        max_body: int | None = None,
    ):
        self.app = app
        self.occupancy = occupancy or Occupancy(limit)
        self.occupancy.limit = limit
        self.exempt = exempt
        self.exempt_endings = exempt_endings
        self.max_body = max_body
        self.body_timeout = BODY_TIMEOUT
        self.min_body_rate = MIN_BODY_RATE

    @property
    def limit(self) -> int:
        return self.occupancy.limit

    @property
    def active(self) -> int:
        return self.occupancy.active

    def _counted(self, scope) -> bool:
        if scope["type"] != "http":  # lifespan messages have no path and must reach the app
            return False
        path = scope["path"]
        return not path.startswith(self.exempt) and not path.endswith(self.exempt_endings)

    async def _busy(self, send) -> None:
        self.occupancy.shed += 1
        detail = f"server busy: {self.occupancy.active} requests in progress; retry in a second"
        await _refuse(send, 503, detail, {"retry-after": "1"})

    async def __call__(self, scope, receive, send) -> None:
        if not self._counted(scope):
            await self.app(scope, receive, send)
            return
        if self.occupancy.saturated:
            await self._busy(send)
            return
        spool = None
        headers = _headers(scope)
        if _has_body(headers):
            spool = await self._receive_body(headers, receive, send)
            if spool is None:  # answered (408, 413, 503) or the client left
                return
        try:
            if self.occupancy.saturated:  # the slots were taken while the body arrived
                await self._busy(send)
                return
            self.occupancy.active += 1
            try:
                await self.app(scope, _replay(spool, receive) if spool else receive, send)
            finally:
                self.occupancy.active -= 1
        finally:
            if spool is not None:
                spool.close()

    async def _too_large(self, send) -> None:
        await _refuse(send, 413, f"request body larger than {self.max_body} bytes", {"connection": "close"})

    async def _receive_body(self, headers: dict[str, str], receive, send) -> _Spool | None:
        """The whole body, or None once the request is answered (408 too slow, 413 too large, 503 too
        many large bodies arriving) or the client has gone."""
        occupancy, loop = self.occupancy, asyncio.get_running_loop()
        length = _content_length(headers)
        if self.max_body is not None and length is not None and length > self.max_body:
            await self._too_large(send)
            return None
        spool, large, started = _Spool(), False, loop.time()
        occupancy.receiving += 1
        try:
            while True:
                if not large and max(spool.size, length or 0) > SMALL_BODY:
                    if occupancy.uploading >= occupancy.limit:
                        occupancy.shed += 1
                        detail = f"server busy: {occupancy.uploading} uploads arriving; retry in a second"
                        await _refuse(send, 503, detail, {"retry-after": "1", "connection": "close"})
                        return None
                    large = True
                    occupancy.receiving -= 1
                    occupancy.uploading += 1
                deadline = started + self.body_timeout + spool.size / self.min_body_rate
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    detail = (f"request body too slow: {spool.size} bytes in {loop.time() - started:.0f} s; "
                              f"a body must arrive within {self.body_timeout:g} s plus 1 s per "
                              f"{self.min_body_rate} bytes")  # fmt: skip
                    await _refuse(send, 408, detail, {"connection": "close"})
                    return None
                if message["type"] != "http.request":  # http.disconnect: nobody to answer
                    return None
                await spool.write(message.get("body", b""))
                if self.max_body is not None and spool.size > self.max_body:
                    await self._too_large(send)
                    return None
                if not message.get("more_body", False):
                    done, spool = spool, None
                    return done
        finally:
            if large:
                occupancy.uploading -= 1
            else:
                occupancy.receiving -= 1
            if spool is not None:
                spool.close()
