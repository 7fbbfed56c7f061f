"""ASGI guards in front of every route: allowed Host names (DNS rebinding), no writes from other
sites (cross-site request forgery), and a bound on the work in progress (overload)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": "80", "https": "443"}


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
        # /health is left out: it reveals only a count, and probes often connect by IP address
        if scope["type"] == "http" and "*" not in self.allowed and scope["path"] != "/health":
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


class AdmissionLimit:
    """At most `limit` requests in progress; the next one gets 503 with Retry-After at once instead
    of waiting in a queue that would make every answer late. Cheap answers are never refused: paths
    under `exempt` (health, static files, job status) and image files and thumbnails, which a results
    page loads by the dozen."""

    def __init__(
        self,
        app,
        limit: int,
        exempt: tuple[str, ...] = ("/health", "/static/", "/api/jobs", "/jobs/"),
        exempt_endings: tuple[str, ...] = ("/thumbnail", "/file"),
    ):
        self.app = app
        self.limit = limit
        self.exempt = exempt
        self.exempt_endings = exempt_endings
        self.active = 0

    def _counted(self, scope) -> bool:
        if scope["type"] != "http":  # lifespan messages have no path and must reach the app
            return False
        path = scope["path"]
        return not path.startswith(self.exempt) and not path.endswith(self.exempt_endings)

    async def __call__(self, scope, receive, send) -> None:
        if not self._counted(scope):
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            detail = f"server busy: {self.active} requests in progress; retry in a second"
            await _refuse(send, 503, detail, {"retry-after": "1"})
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
