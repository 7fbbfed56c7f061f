"""Issue 24: the access log (api/access_log.py). Over real HTTP (uvicorn on a localhost port), an app
of each test's own over the sample library, its lines read from stderr where the server writes them:
one line per request with the route template and status, JSON Lines that parse, the API key never
in a line however it is sent, the query text only with --log-queries, X-Request-ID echoed or made."""

from __future__ import annotations

import json
import logging
import re
import time
from contextlib import contextmanager
from datetime import datetime

import pytest
from helpers import served_client

from api import create_app
from api.access_log import StructuredFormatter, configure_logging, request_id
from engine.search import SearchRequest

MISSING = "00000000-0000-0000-0000-000000000000"  # a well-formed id no image has
JOB_LINE = re.compile(r'event=job|"event": "job"')
KEY = "k3y-Never-Logged-7731"
BEARER = f"Bearer {KEY}"
TEXT_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<client>\S+) (?P<method>[A-Z]+) (?P<route>\S+) "
    r"(?P<status>\d{3}) (?P<ms>\d+(\.\d+)?)ms id=(?P<id>[A-Za-z0-9._-]+)(?P<rest>.*)"
)


@pytest.fixture
def stderr_lines(capsys):
    """Access lines written to stderr from now on; `read(n)` waits (a line is written just after its
    answer is sent) until `n` new lines have come, and returns every new one."""
    capsys.readouterr()
    seen: list[str] = []

    def read(n: int, timeout: float = 10.0) -> list[str]:
        deadline = time.time() + timeout
        while True:
            lines = capsys.readouterr().err.splitlines()  # an upload job of another test may log too
            seen.extend(line for line in lines if line.strip() and not JOB_LINE.search(line))
            if len(seen) >= n or time.time() > deadline:
                return list(seen)
            time.sleep(0.02)

    yield read
    configure_logging("text")  # the format is the process's: leave it as the other tests expect


@contextmanager
def app_over(library, **settings):
    """A server over `library` with `settings` changed while create_app reads them; yields an
    httpx client. No lifespan: the library's upload runner is left alone."""
    original = library.settings
    library.settings = original.with_overrides(**settings)
    try:
        app = create_app(library)
    finally:
        library.settings = original
    with served_client(app, lifespan="off") as http:
        yield http


@pytest.fixture(scope="module")
def an_image(api_library) -> str:
    return api_library.search(SearchRequest(q="sale", k=1)).hits[0].id


def test_one_text_line_per_request_with_the_route_template_and_status(api_library, an_image, stderr_lines):
    with app_over(api_library) as http:
        answers = [
            http.get(f"/api/images/{an_image}"),
            http.get(f"/api/images/{MISSING}"),
            http.get("/api/search", params={"q": "sale", "k": 3}),
            http.get("/no/such/page%0Afake 200 line"),  # an escaped newline must not make a second line
            http.get("/api/search", headers={"Host": "evil.example"}),  # refused by the Host guard
            http.delete(f"/api/images/{MISSING}", headers={"Origin": "http://evil.example"}),  # cross-site
        ]
        lines = stderr_lines(len(answers))
    assert [a.status_code for a in answers] == [200, 404, 200, 404, 400, 403]
    assert len(lines) == len(answers), lines  # one line each, the escaped newline included
    parsed = [TEXT_LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    got = [(m["method"], m["route"], int(m["status"]), m["client"]) for m in parsed]
    assert got == [
        ("GET", "/api/images/{image_id}", 200, "127.0.0.1"),
        ("GET", "/api/images/{image_id}", 404, "127.0.0.1"),
        ("GET", "/api/search", 200, "127.0.0.1"),
        ("GET", "(unmatched)", 404, "127.0.0.1"),
        ("GET", "/api/search", 400, "127.0.0.1"),
        ("DELETE", "/api/images/{image_id}", 403, "127.0.0.1"),
    ]
    assert an_image not in "\n".join(lines)  # the template, never the raw path of a matched route
    assert parsed[3]["rest"] == ' path="/no/such/page\\nfake 200 line"'  # unmatched: the path, escaped
    assert "sale" not in "\n".join(lines)  # no query parameter by default
    for match, answer in zip(parsed, answers, strict=True):
        assert match["id"] == answer.headers["x-request-id"]
        assert float(match["ms"]) >= 0


def test_json_lines_parse_and_carry_every_field(api_library, stderr_lines):
    with app_over(api_library, log_format="json") as http:
        answer = http.get("/api/search", params={"q": "sale", "k": 2})
        lines = stderr_lines(1)
    assert answer.status_code == 200 and len(lines) == 1
    record = json.loads(lines[0])
    fields = {"time", "event", "method", "route", "status", "duration_ms", "request_id", "client"}
    assert set(record) == fields
    assert (record["event"], record["method"], record["route"], record["status"]) == (
        "request", "GET", "/api/search", 200,
    )  # fmt: skip
    assert record["request_id"] == answer.headers["x-request-id"] and record["client"] == "127.0.0.1"
    assert record["time"].endswith("Z") and not datetime.fromisoformat(record["time"]).utcoffset()
    assert isinstance(record["duration_ms"], float) and record["duration_ms"] > 0


def test_the_api_key_never_appears_however_it_is_sent(api_library, stderr_lines):
    """Header, Bearer header, query parameter, on reads, writes and /metrics; with --log-queries on
    and in JSON, where every string is written out."""
    original = api_library.settings
    api_library.settings = original.with_overrides(api_key=KEY)  # read per request by the key checks
    try:
        with app_over(api_library, log_format="json", log_queries=True) as http:
            answers = [
                http.get("/api/search", params={"q": "sale", "api_key": KEY}, headers={"X-API-Key": KEY}),
                http.get(
                    "/api/search", params={"api_key": KEY, "q": "shoe"}, headers={"Authorization": BEARER}
                ),
                http.delete(f"/api/images/{MISSING}", params={"api_key": KEY}, headers={"X-API-Key": KEY}),
                http.delete(f"/api/images/{MISSING}", headers={"X-API-Key": "wrong-" + KEY}),
                http.get("/metrics", headers={"X-API-Key": KEY}),
                http.get("/nope/x", params={"api_key": KEY}),
            ]
            lines = stderr_lines(len(answers))
    finally:
        api_library.settings = original
    assert [a.status_code for a in answers] == [200, 200, 404, 401, 200, 404]
    assert len(lines) == len(answers)
    assert all(KEY not in line and KEY.lower() not in line.lower() for line in lines), lines
    records = [json.loads(line) for line in lines]
    assert [r.get("q") for r in records] == ["sale", "shoe", None, None, None, None]  # q, and only q


def test_query_text_only_with_log_queries(api_library, stderr_lines):
    query = "zebra-crossing-query"
    with app_over(api_library) as http:
        http.get("/api/search", params={"q": query, "where": "brand=Audi"})
        off = stderr_lines(1)
    assert len(off) == 1 and query not in off[0] and "brand" not in off[0]
    with app_over(api_library, log_queries=True) as http:
        http.get("/api/search", params={"q": f"{query} now", "where": "brand=Audi"})
        http.get("/api/search", params={"where": "brand=Audi"})  # no q: nothing to add
        on = stderr_lines(3)[1:]
    assert len(on) == 2
    assert on[0].endswith(f' q="{query} now"') and "brand" not in on[0]
    assert " q=" not in on[1]


def test_request_id_is_echoed_when_well_formed_else_made(api_library, stderr_lines):
    with app_over(api_library) as http:
        ok = "client-42.trace_ID"
        bad = ["has space", "x" * 65, "semi;colon", "ünïcode".encode(), ""]
        echoed = http.get("/health", headers={"X-Request-ID": ok})
        replaced = [http.get("/health", headers={"X-Request-ID": value}) for value in bad]
        made = [http.get("/health") for _ in range(2)]
        lines = stderr_lines(1 + len(bad) + 2)
    assert echoed.headers["x-request-id"] == ok
    ids = [a.headers["x-request-id"] for a in [*replaced, *made]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == len(ids)
    assert [TEXT_LINE.fullmatch(line)["id"] for line in lines] == [ok, *ids]
    assert "x" * 65 not in "\n".join(lines) and "has space" not in "\n".join(lines)
    assert request_id({"headers": [(b"x-request-id", b"A" * 64)]}) == "A" * 64


def test_job_and_other_records_render_in_both_formats():
    """Lines of the "adsearch.jobs" logger (written by engine.jobs.queue) and plain records, as the
    access log's formatter renders them: one line each, control characters escaped."""

    def record(message, level=logging.INFO, **extra):
        made = logging.LogRecord("adsearch.jobs", level, __file__, 1, message, (), None)
        made.__dict__.update(extra)
        return made

    job = record("job j1 done", event="job", job_id="j1", kind="upload", status="done", duration_ms=12.5,
                 total=3, ingested=2, failed=1)  # fmt: skip
    text, as_json = StructuredFormatter("text"), StructuredFormatter("json")
    line = text.format(job)
    assert re.fullmatch(
        r"\S+Z event=job job_id=j1 kind=upload status=done duration_ms=12.5 total=3 ingested=2 failed=1", line
    ), line
    assert json.loads(as_json.format(job)) | {"time": "t"} == {
        "time": "t", "event": "job", "job_id": "j1", "kind": "upload", "status": "done", "duration_ms": 12.5,
        "total": 3, "ingested": 2, "failed": 1,
    }  # fmt: skip
    interrupted = record("job j2 interrupted", logging.ERROR, event="job", job_id="j2", error='bad\n"file"')
    assert text.format(interrupted).endswith(' level=error event=job job_id=j2 error="bad\\n\\"file\\""')
    assert json.loads(as_json.format(interrupted))["error"] == 'bad\n"file"'
    plain = record("odd \x1b[2J text", logging.WARNING)
    assert text.format(plain).endswith(" warning adsearch.jobs: odd \\x1b[2J text")
    assert "\n" not in as_json.format(record("a\nb\u2028c"))
    assert all(ord(c) < 128 for c in as_json.format(plain))
    with pytest.raises(ValueError, match="text, json"):
        StructuredFormatter("xml")
