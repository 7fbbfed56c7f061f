"""The server's metrics in the Prometheus text format (prometheus-client), one registry per app.

Counted as things happen: requests by method, route template and status with their latency (from
the access log middleware, api/access_log.py, so refused and shed requests count too), search stage
timings (the library's search observers: every search the served library answers), upload jobs and
the images they ingested (the job queue's `finished` observers). Read at scrape time: admission
slots in use and requests shed (api.guards.Occupancy), the query cache's hits and misses, job queue
length and each unfinished job's progress (library.jobs), the collection's size (store.count()).

The engine knows nothing of this module: it calls plain observers (engine/observers.py)."""

from __future__ import annotations

import ipaddress
import re

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from api.access_log import Answered
from api.guards import Occupancy
from engine.jobs.base import UPLOAD, Job
from engine.library import Library

__all__ = ["CONTENT_TYPE_LATEST", "AppMetrics", "is_loopback"]

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others: "OTHER"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INGEST_RESULTS = ("ingested", "unchanged", "failed", "cancelled")  # what an upload run reports per file
_STAGE = re.compile(r"[a-z][a-z0-9_]{0,31}")  # a timing's name as the engine writes it (encode_image, qdrant)


def is_loopback(host: str | None) -> bool:
    """Whether a client address is a loopback one (127.0.0.0/8, ::1, ::ffff:127.x); a name is not."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class AppMetrics:
    """One app's metrics: its own CollectorRegistry (tests make many apps in one process), the
    counters and histograms fed by observers, and a collector that reads the rest when scraped."""

    def __init__(self, library: Library, occupancy: Occupancy):
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "adsearch_http_requests", "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"], registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "adsearch_http_request_duration_seconds",
            "time from a request's arrival to the end of its answer, by route template",
            ["route"], buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.stages = Histogram(
            "adsearch_search_stage_seconds",
            "time of each stage of the searches the server answers (ocr, encode, encode_<channel>, qdrant)",
            ["stage"], buckets=STAGE_BUCKETS, registry=registry,
        )  # fmt: skip
        self.ingest_images = Counter(
            "adsearch_ingest_images", "uploaded images handled by upload jobs, by result",
            ["result"], registry=registry,
        )  # fmt: skip
        self.ingest_seconds = Counter(
            "adsearch_ingest_seconds", "time upload jobs spent ingesting", registry=registry
        )
        self.jobs_finished = Counter(
            "adsearch_jobs_finished", "job runs that ended, by kind and status (done, interrupted)",
            ["kind", "status"], registry=registry,
        )  # fmt: skip
        for result in INGEST_RESULTS:
            self.ingest_images.labels(result)  # present at 0 from the start: rate() needs a first sample
        registry.register(_ServerState(library, occupancy))
        library.search_observers.add(self.observe_search)  # held weakly: they go with this object
        library.jobs.finished.add(self.observe_job)

    def observe_request(self, answered: Answered) -> None:
        method = answered.method if answered.method in METHODS else "OTHER"
        self.requests.labels(method, answered.route, str(answered.status)).inc()
        self.latency.labels(answered.route).observe(answered.seconds)

    def observe_search(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            if _STAGE.fullmatch(stage) and isinstance(ms, int | float):
                self.stages.labels(stage).observe(ms / 1000)

    def observe_job(self, job: Job, outcome: dict[str, int], seconds: float) -> None:
        self.jobs_finished.labels(job.kind, job.status).inc()
        if job.kind == UPLOAD and job.status == "done":
            for result in INGEST_RESULTS:
                self.ingest_images.labels(result).inc(outcome.get(result, 0))
            self.ingest_seconds.inc(seconds)

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (CONTENT_TYPE_LATEST)."""
        return generate_latest(self.registry)


class _ServerState:
    """What is read when /metrics is scraped: admission, jobs, collection size."""

    def __init__(self, library: Library, occupancy: Occupancy):
        self.library = library
        self.occupancy = occupancy

    def collect(self):
        occupancy = self.occupancy
        yield GaugeMetricFamily(
            "adsearch_requests_in_progress", "requests holding an admission slot", value=occupancy.active
        )
        yield GaugeMetricFamily(
            "adsearch_request_slots", "admission slots (--max-concurrent-requests)", value=occupancy.limit
        )
        yield GaugeMetricFamily(
            "adsearch_request_bodies_arriving", "request bodies being received (they hold no slot yet)",
            value=occupancy.receiving + occupancy.uploading,
        )  # fmt: skip
        yield CounterMetricFamily(
            "adsearch_requests_shed", "requests answered 503 at once because the server was full",
            value=occupancy.shed,
        )  # fmt: skip
        cache = self.library.query_cache
        yield CounterMetricFamily(
            "adsearch_query_cache_hits", "text query vectors found in the query cache", value=cache.hits
        )
        yield CounterMetricFamily(
            "adsearch_query_cache_misses", "text query vectors encoded (not in the cache)", value=cache.misses
        )
        yield GaugeMetricFamily(
            "adsearch_query_cache_entries", "query vectors in the cache", value=len(cache)
        )
        unfinished = [job for job in self.library.jobs.list() if job.status in ("queued", "running")]
        yield GaugeMetricFamily(
            "adsearch_job_queue_length", "jobs accepted and not finished (queued or running)",
            value=len(unfinished),
        )  # fmt: skip
        done = GaugeMetricFamily(
            "adsearch_job_steps_done",
            "steps an unfinished job has done (uploads: files)",
            labels=["job_id", "kind"],
        )
        steps = GaugeMetricFamily(
            "adsearch_job_steps",
            "steps an unfinished job has in all (uploads: files)",
            labels=["job_id", "kind"],
        )
        for job in unfinished:
            done.add_metric([job.id, job.kind], job.done)
            steps.add_metric([job.id, job.kind], job.total)
        yield done
        yield steps
        try:
            points = self.library.store.count()
        except Exception:  # noqa: BLE001 (a store that cannot answer: the other metrics still do)
            return
        yield GaugeMetricFamily(
            "adsearch_collection_points", "images (points) in the collection", value=points
        )
