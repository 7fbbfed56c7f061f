"""The access log: one structured line per request, written by a pure ASGI middleware placed outside
every other (so requests the guards refuse, 400 host, 403 cross-site, 408, 413, 503 shed, are logged
and counted too), and the formatter that renders it, and the job lines (logger "adsearch.jobs"), as
readable text or JSON Lines on stderr.

A line holds the time (ISO 8601, UTC, when the answer ended), method, route template
(`/api/images/{image_id}`, never the raw path; a path no route matches is logged as "(unmatched)"
with the path, escaped and cut, beside it), status, duration in ms, request id and client address.
Never logged: headers (so never the API key, whether sent as X-API-Key or Authorization), the query
string (so never an `api_key=` parameter), bodies. The query text `q` is logged only with
`--log-queries`.

The request id is the client's `X-Request-ID` when it is 1-64 characters of [A-Za-z0-9._-], else a
new one; the answer carries it back in `X-Request-ID`, and the routes see it as
`request.state.request_id`."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from starlette.routing import Mount, compile_path

from engine.terminal import printable

ACCESS_LOG = logging.getLogger("adsearch.access")
LOGGERS = "adsearch"  # the parent of adsearch.access and adsearch.jobs: configure_logging sets it up
LOG_FORMATS = ("text", "json")
REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
UNMATCHED = "(unmatched)"  # the route of a path no route matches
NO_ANSWER = 499  # the status logged when the client went away before any answer (nginx's number)
MAX_LOGGED_PATH = 200  # characters of an unmatched path kept in its line
MAX_LOGGED_QUERY = 500  # characters of the query text kept with --log-queries


@dataclass(frozen=True)
class Answered:
    """One request as the access log saw it, for whoever counts requests (api/metrics.py)."""

    method: str
    route: str  # the route template, or UNMATCHED
    status: int
    seconds: float


def request_id(scope) -> str:
    """The client's X-Request-ID when it is well formed, else a new random one (32 hex digits)."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else uuid.uuid4().hex
    return uuid.uuid4().hex


def _declared(routes: Iterable, prefix: str = "") -> Iterator[tuple[str, frozenset[str] | None]]:
    """(path with convertors, methods or None for any) of every route, included routers' too."""
    for route in routes:
        if isinstance(route, Mount):
            yield prefix + route.path + "/{path:path}", None
        elif isinstance(getattr(route, "path", None), str):
            methods = getattr(route, "methods", None)
            yield prefix + route.path, frozenset(methods) if methods else None
        else:  # newer FastAPI keeps an included router whole: its routes, under the prefix it was given
            inner = getattr(route, "original_router", None)
            context = getattr(route, "include_context", None)
            if inner is not None:
                yield from _declared(inner.routes, prefix + (getattr(context, "prefix", "") or ""))


class RouteTemplates:
    """The route template a request matched: the route the router chose, or, for a request answered
    before routing (a guard refused it) or by no route, the first declared route whose path matches
    (a route that has the path but not the method still names it, as the router's 405 does)."""

    def __init__(self, router) -> None:
        self.router = router
        self._table: list[tuple[re.Pattern, str, frozenset[str] | None]] | None = None

    def _compiled(self) -> list[tuple[re.Pattern, str, frozenset[str] | None]]:
        if self._table is None:  # built at the first such request: every route is declared by then
            table = []
            for path, methods in _declared(self.router.routes):
                regex, template, _ = compile_path(path)
                table.append((regex, template, methods))
            self._table = table
        return self._table

    def of(self, scope) -> str | None:
        path = scope.get("path", "")
        route = scope.get("route")
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            return getattr(route, "path_format", None) or route.path
        if self.router is None:
            return None
        method, other_method = scope.get("method"), None
        for regex, template, methods in self._compiled():
            if regex.match(path):
                if methods is None or method in methods:
                    return template
                other_method = other_method or template
        return other_method


class AccessLog:
    """Pure ASGI middleware: times each HTTP request, gives it a request id (echoed in X-Request-ID),
    logs one line on ACCESS_LOG and hands an `Answered` to `on_answer` (the metrics)."""

    def __init__(
        self,
        app,
        router=None,
        log_queries: bool = False,
        on_answer: Callable[[Answered], None] | None = None,
        logger: logging.Logger = ACCESS_LOG,
    ):
        self.app = app
        self.templates = RouteTemplates(router)
        self.log_queries = log_queries
        self.on_answer = on_answer
        self.logger = logger

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        header = (REQUEST_ID_HEADER, rid.encode("ascii"))
        status = None

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != REQUEST_ID_HEADER]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            status = status or 500  # ServerErrorMiddleware, outside this one, answers 500
            raise
        finally:
            self._answered(scope, status or NO_ANSWER, time.perf_counter() - started, rid)

    def _answered(self, scope, status: int, seconds: float, rid: str) -> None:
        route = self.templates.of(scope)
        method = scope.get("method", "")
        if self.on_answer is not None:
            self.on_answer(Answered(method, route or UNMATCHED, status, seconds))
        if not self.logger.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        fields = {"event": "request", "method": method, "route": route or UNMATCHED, "status": status,
                  "duration_ms": round(seconds * 1000, 2), "request_id": rid,
                  "client": client[0] if client else "-"}  # fmt: skip
        if route is None:
            fields["path"] = scope.get("path", "")[:MAX_LOGGED_PATH]
        if self.log_queries:
            query = self._query_text(scope.get("query_string", b""))
            if query is not None:
                fields["q"] = query
        self.logger.info("%s %s %s", method, fields["route"], status, extra=fields)

    @staticmethod
    def _query_text(query_string: bytes) -> str | None:
        """The `q` parameter (the last one, as the routes read it), cut; no other parameter is read."""
        if b"q=" not in query_string:
            return None
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, errors="replace")
        found = [value for name, value in pairs if name == "q"]
        return found[-1][:MAX_LOGGED_QUERY] if found else None


# ---------------------------------------------------------------------- rendering


_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName",
}  # fmt: skip


def _time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: object) -> str:
    """A value in a text line: numbers as they are, text with control characters escaped
    (engine.terminal.printable), quoted when it holds a space, a quote or '=', or is empty."""
    if value is None:
        return "-"
    if isinstance(value, bool | int | float):
        return str(value)
    text = printable(value)
    if not text or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text


class StructuredFormatter(logging.Formatter):
    """Renders a record with its extra fields: `json`, one JSON object a line (ASCII only, so every
    control or odd character is escaped); `text`, a readable line: an access line as
    `TIME CLIENT METHOD ROUTE STATUS DURATIONms id=REQUEST_ID [path=...] [q=...]`, any other
    structured line (jobs) as `TIME key=value ...`, a plain record as `TIME [level] logger: message`."""

    def __init__(self, style: str = "text"):
        super().__init__()
        if style not in LOG_FORMATS:
            raise ValueError(f"log format {style!r}: choose one of {', '.join(LOG_FORMATS)}")
        self.style = style

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES}
        line: dict[str, object] = {"time": _time(record.created)}
        if record.levelno != logging.INFO:
            line["level"] = record.levelname.lower()
        line.update(fields or {"logger": record.name, "message": record.getMessage()})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if self.style == "json":
            return json.dumps(line, ensure_ascii=True, default=str)
        return self._text_line(line)

    @staticmethod
    def _text_line(line: dict[str, object]) -> str:
        parts = [str(line.pop("time"))]
        if line.get("event") == "request":
            parts += [_text(line.pop(k, None)) for k in ("client", "method", "route", "status")]
            parts += [f"{line.pop('duration_ms', '-')}ms", f"id={_text(line.pop('request_id', None))}"]
            line.pop("event")
        elif set(line) <= {"level", "logger", "message", "exception"}:
            parts += [_text(line.pop("level"))] if "level" in line else []
            parts.append(f"{printable(line.pop('logger'))}: {printable(line.pop('message'))}")
        parts += [f"{key}={_text(value)}" for key, value in line.items()]
        return " ".join(parts)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is written (as logging.lastResort does)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


_OURS = "_adsearch_stderr"


def configure_logging(log_format: str = "text") -> logging.Handler:
    """The "adsearch" loggers (access, jobs) write INFO and up to stderr in `log_format`, through one
    handler of this process (made once, its format changed by a later call; the format is the
    process's, not one app's). They do not propagate to the root logger, so a logging set up by
    someone else does not print each line twice; add handlers to "adsearch" to send them elsewhere."""
    logger = logging.getLogger(LOGGERS)
    handler = next((h for h in logger.handlers if getattr(h, _OURS, False)), None)
    if handler is None:
        handler = _StderrHandler()
        setattr(handler, _OURS, True)
        logger.addHandler(handler)
    handler.setFormatter(StructuredFormatter(log_format))
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler
