"""Issue 24: /metrics (api/metrics.py, api/routes/metrics.py) over real HTTP on a localhost port,
against a library of this module's own (it uploads): the exposition parses with prometheus_client's
own parser, counters move by exactly the requests made, a shed request is logged and counted, and
the access rule (loopback, or the API key) holds."""

from __future__ import annotations

import gc
import json
import threading
import time

import httpx
import pytest
from helpers import png_bytes, served_client
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from api import create_app
from api.access_log import configure_logging
from api.metrics import is_loopback
from api.settings import ServeSettings

MISSING = "00000000-0000-0000-0000-000000000000"
KEY = "metrics-k3y"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape(http: httpx.Client) -> dict:
    answer = http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")  # the Prometheus text format
    return samples(answer.text)


def settled(http: httpx.Client, check, timeout: float = 10.0) -> tuple[dict, int]:
    """A scrape once `check(samples)` holds (a request is counted just after its answer is sent),
    and how many scrapes that took."""
    deadline, scrapes = time.time() + timeout, 0
    while True:
        found, scrapes = scrape(http), scrapes + 1
        if check(found) or time.time() > deadline:
            return found, scrapes
        time.sleep(0.05)


@pytest.fixture(scope="module")
def metrics_library(tmp_path_factory, settings, encoders):
    """An empty library of its own: the tests upload into it."""
    from engine.library import Library

    own = ServeSettings.serving(settings).with_overrides(db=tmp_path_factory.mktemp("metrics-db"))
    library = Library(own, encoders=encoders)
    yield library
    library.close()


@pytest.fixture(scope="module")
def server(metrics_library):
    app = create_app(metrics_library)
    with served_client(app, timeout=120) as http:
        yield app, http


def test_metrics_parse_and_count_exactly_the_requests_made(server, metrics_library, capsys):
    app, http = server
    configure_logging("json")  # the job lines too, on stderr, as JSON
    try:
        upload = http.post("/api/images", params={"wait": "true"}, files=[("files", ("ad.png", png_bytes()))])
        assert upload.status_code == 200 and upload.json()["counts"]["ingested"] == 1
        uploaded = {"method": "POST", "route": "/api/images", "status": "200"}
        before, _ = settled(http, lambda f: value(f, "adsearch_http_requests_total", **uploaded) == 1)

        searches = [http.get("/api/search", params={"q": "sale", "k": 3}) for _ in range(3)]
        searches.append(http.post("/api/search", json={"q": "sale", "k": 3}))
        missing = http.get(f"/api/images/{MISSING}")
        assert [a.status_code for a in searches] == [200] * 4 and missing.status_code == 404

        def moved(found, name, **labels):
            return value(found, name, **labels) - value(before, name, **labels)

        # settled: every request above counted (the last one, then the others, answered before it)
        missing_counted = {"method": "GET", "route": "/api/images/{image_id}", "status": "404"}
        after, scrapes = settled(
            http, lambda f: moved(f, "adsearch_http_requests_total", **missing_counted) >= 1
        )
        jobs = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"event": "job"' in line]
    finally:
        configure_logging("text")

    requests = "adsearch_http_requests_total"
    assert moved(after, requests, method="GET", route="/api/search", status="200") == 3
    assert moved(after, requests, method="POST", route="/api/search", status="200") == 1
    assert moved(after, requests, method="GET", route="/api/images/{image_id}", status="404") == 1
    # `before` and the scrapes `settled` made before its last one (a scrape is counted once answered)
    assert moved(after, requests, method="GET", route="/metrics", status="200") == scrapes
    assert sum(v - before.get(k, 0.0) for k, v in after.items() if k[0] == requests) == 5 + scrapes
    latency = "adsearch_http_request_duration_seconds_count"
    assert moved(after, latency, route="/api/search") == 4
    assert moved(after, "adsearch_http_request_duration_seconds_bucket", route="/api/search", le="+Inf") == 4
    assert moved(after, "adsearch_search_stage_seconds_count", stage="qdrant") == 4  # one per search
    assert moved(after, "adsearch_search_stage_seconds_count", stage="encode") == 4
    assert value(after, "adsearch_search_stage_seconds_sum", stage="qdrant") > 0

    # what the upload job did, and what is read at scrape time
    assert value(after, "adsearch_ingest_images_total", result="ingested") == 1
    assert value(after, "adsearch_ingest_images_total", result="failed") == 0
    assert value(after, "adsearch_ingest_seconds_total") > 0
    assert value(after, "adsearch_jobs_finished_total", kind="upload", status="done") == 1
    assert value(after, "adsearch_collection_points") == metrics_library.store.count() == 1
    assert value(after, "adsearch_job_queue_length") == 0
    assert value(after, "adsearch_request_slots") == metrics_library.settings.max_concurrent_requests
    assert value(after, "adsearch_requests_in_progress") == 0  # /metrics itself takes no slot
    assert value(after, "adsearch_requests_shed_total") == 0

    # the job's own log lines: one as it started, one as it ended, with what it did
    job_id = upload.json()["id"]
    jobs = [j for j in jobs if j["job_id"] == job_id]  # (another test's job may log meanwhile)
    assert [j["status"] for j in jobs] == ["running", "done"]
    assert (jobs[1]["kind"], jobs[1]["ingested"], jobs[1]["failed"], jobs[1]["total"]) == ("upload", 1, 0, 1)


def test_job_progress_is_read_at_scrape_time(server, metrics_library, monkeypatch):
    """An unfinished job shows in the queue length and with its progress, by id."""
    _, http = server
    from engine.jobs import JobFile, UploadJob

    job = UploadJob(files=[JobFile("a.png", id="x"), JobFile("b.png", id="y"), JobFile("c.png", id="z")])
    job.status, job.done = "running", 1
    monkeypatch.setattr(metrics_library.jobs, "list", lambda: [job])
    found = scrape(http)
    assert value(found, "adsearch_job_queue_length") == 1
    assert value(found, "adsearch_job_steps_done", job_id=job.id, kind="upload") == 1
    assert value(found, "adsearch_job_steps", job_id=job.id, kind="upload") == 3


def test_a_shed_request_is_logged_and_counted(metrics_library, monkeypatch, capsys):
    """One slot, held by a search that waits; the next search is refused with 503 at once, and is
    logged and counted; /metrics is still answered (it takes no slot) and shows the slot in use."""
    original = metrics_library.settings
    metrics_library.settings = original.with_overrides(max_concurrent_requests=1)
    try:
        app = create_app(metrics_library)
    finally:
        metrics_library.settings = original
    release, entered = threading.Event(), threading.Event()
    search = metrics_library.search

    def held(*args, **kwargs):
        entered.set()
        assert release.wait(60)
        return search(*args, **kwargs)

    monkeypatch.setattr(metrics_library, "search", held)
    capsys.readouterr()
    with served_client(app, lifespan="off") as http:
        first: list[httpx.Response] = []
        holder = threading.Thread(target=lambda: first.append(http.get("/api/search", params={"q": "sale"})))
        holder.start()
        try:
            assert entered.wait(30)
            shed = http.get("/api/search", params={"q": "sale"}, headers={"X-Request-ID": "shed-1"})
            during = scrape(http)
        finally:
            release.set()
            holder.join(60)
        after, _ = settled(http, lambda f: value(f, "adsearch_http_requests_total", method="GET",
                                                 route="/api/search", status="200") == 1)  # fmt: skip
    assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
    assert shed.headers["x-request-id"] == "shed-1" and first[0].status_code == 200
    assert value(during, "adsearch_requests_in_progress") == 1
    assert value(during, "adsearch_requests_shed_total") == 1
    assert value(after, "adsearch_http_requests_total", method="GET", route="/api/search", status="503") == 1
    assert value(after, "adsearch_requests_shed_total") == 1
    lines = capsys.readouterr().err.splitlines()
    shed_lines = [line for line in lines if " id=shed-1" in line]
    assert len(shed_lines) == 1 and " GET /api/search 503 " in shed_lines[0], lines


def test_metrics_need_the_key_from_an_address_that_is_not_loopback(metrics_library):
    """Real HTTP here can only come from 127.0.0.1, so a client elsewhere is simulated with
    starlette's TestClient, which sets the ASGI scope's client address (203.0.113.7, TEST-NET-3)."""
    app = create_app(metrics_library)
    outside = TestClient(app, base_url="http://127.0.0.1", client=("203.0.113.7", 40000))
    local = TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 40000))
    assert "/metrics" not in app.openapi()["paths"]

    # no key configured: never from elsewhere, always from loopback
    refused = outside.get("/metrics")
    assert refused.status_code == 403 and "ADSEARCH_API_KEY" in refused.json()["detail"]
    assert "adsearch_http_requests_total" not in refused.text
    assert local.get("/metrics").status_code == 200

    original = metrics_library.settings
    metrics_library.settings = original.with_overrides(api_key=KEY)
    try:
        assert outside.get("/metrics").status_code == 401
        assert outside.get("/metrics", headers={"X-API-Key": "wrong"}).status_code == 401
        assert outside.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert outside.get("/metrics", params={"api_key": KEY}).status_code == 401  # a header, not the URL
        assert outside.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200
        with_bearer = outside.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
        assert with_bearer.status_code == 200
        refused = {"method": "GET", "route": "/metrics", "status": "401"}
        assert value(samples(with_bearer.text), "adsearch_http_requests_total", **refused) == 4
        assert local.get("/metrics").status_code == 200  # loopback needs no key
    finally:
        metrics_library.settings = original


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("2001:db8::1", False), ("localhost", False),
     ("testclient", False), ("", False), (None, False)],
)  # fmt: skip
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_each_app_counts_in_its_own_registry(metrics_library):
    """Tests and embedders make several apps over one library: each counts only its own requests
    (a per-app CollectorRegistry, not prometheus_client's global one)."""
    observers = len(metrics_library.search_observers)
    one, two = create_app(metrics_library), create_app(metrics_library)
    assert len(metrics_library.search_observers) == observers + 2
    clients = {name: TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 1))
               for name, app in (("one", one), ("two", two))}  # fmt: skip
    clients["one"].get(f"/api/images/{MISSING}")
    read = {name: samples(client.get("/metrics").text) for name, client in clients.items()}
    labels = {"method": "GET", "route": "/api/images/{image_id}", "status": "404"}
    assert value(read["one"], "adsearch_http_requests_total", **labels) == 1
    assert value(read["two"], "adsearch_http_requests_total", **labels) == 0


def test_observers_are_held_weakly_and_never_fail_the_work():
    """engine.observers: a dropped listener stops being called; a failing one is logged, not raised."""
    from engine.observers import Observers

    class Listener:
        def __init__(self):
            self.seen = []

        def hear(self, *args):
            self.seen.append(args)

        def fail(self, *args):
            raise RuntimeError("broken listener")

    observers, kept, dropped = Observers(), Listener(), Listener()
    observers.add(kept.hear)
    observers.add(dropped.hear)
    observers.add(kept.fail)
    observers({"qdrant": 1.0})
    assert kept.seen == dropped.seen == [({"qdrant": 1.0},)] and len(observers) == 3
    del dropped
    gc.collect()
    observers("again")
    assert kept.seen[-1] == ("again",) and len(observers) == 2
    with pytest.raises(TypeError):
        observers.add(lambda *args: None)  # only bound methods: a lambda would vanish at once
