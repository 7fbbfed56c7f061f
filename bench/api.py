"""HTTP API latency vs engine-only latency, same queries, same collection, one run.

Uses the ads377 collection built by bench/ingest.py. Phase 1 runs the queries through the engine
(`Library.search`) in this process; phase 2 starts `adsearch serve` as its own process on the same
store (the embedded store admits one process at a time) and sends the same queries to
`GET /api/search` over HTTP on localhost, one at a time. Also reports the server's startup time to
its first answer.

    .venv/bin/python -m bench.api [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import known_item_queries, percentiles, write_results
from bench.ingest import DB, random_vit_b_32
from engine.library import Library
from engine.search import SearchRequest
from engine.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    port: int, probe_query: str, db: Path = DB, timeout_s: float = 120.0
) -> tuple[subprocess.Popen, float]:
    """Start `adsearch serve` on a store (default ads377); return it once it answers (within
    `timeout_s`), with its startup time."""
    env = {
        **os.environ,
        "ADSEARCH_DB": str(db),
        "ADSEARCH_CLIP_MODEL": str(random_vit_b_32()),
        "HF_HUB_OFFLINE": "1",
    }
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        while True:
            try:
                http.get("/api/search", params={"q": probe_query, "k": 10}).raise_for_status()
                return server, time.perf_counter() - started
            except httpx.TransportError:
                if server.poll() is not None or time.perf_counter() - started > timeout_s:
                    server.kill()
                    raise SystemExit("adsearch serve did not start") from None
                time.sleep(0.1)


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory now and at peak (VmRSS, VmHWM) of a process, MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {k: round(int(fields[f].split()[0]) / 1024, 1) for k, f in (("rss", "VmRSS"), ("peak", "VmHWM"))}


def search_times(port: int, queries: list[str], warmup: list[str], timeout_s: float = 60.0) -> list[float]:
    """Each query's `GET /api/search` time in ms on the server at `port`, after the warm-up queries."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout_s) as http:
        for q in warmup:
            http.get("/api/search", params={"q": q, "k": 10})
        ms = []
        for q in queries:
            start = time.perf_counter()
            http.get("/api/search", params={"q": q, "k": 10}).raise_for_status()
            ms.append((time.perf_counter() - start) * 1000)
    return ms


def time_http(queries: list[str], warmup: list[str], db: Path = DB, also=None) -> dict:
    """`adsearch serve` on `db`: startup to first answer, then each query's HTTP time and the RSS after;
    `also(port)`, when given, measures more on the same server (its result under "also")."""
    port = free_port()
    server, startup_s = start_server(port, warmup[0], db)
    try:
        ms = search_times(port, queries, warmup)
        memory = rss_mib(server.pid)
        extra = also(port) if also else None
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "ms": percentiles(ms),
        "startup_s": round(startup_s, 2),
        "server_memory_mib": memory,
        "also": extra,
    }


def body_and_file_times(queries: list[str], ids: list[str]):
    """A measure for `time_http`: the same searches again (embeddings cached), alternating GET and
    `POST /api/search` with a JSON body (read whole by the admission guard before it takes a slot),
    and every original file (`/file`, its sha256 checked
    before it is sent)."""

    def measure(port: int) -> dict:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            get_ms, post_ms, file_ms, sent = [], [], [], 0
            for q in queries:  # alternated, both with the query embeddings cached by the first pass
                for way, times in (("GET", get_ms), ("POST", post_ms)):
                    start = time.perf_counter()
                    if way == "GET":
                        answer = http.get("/api/search", params={"q": q, "k": 10})
                    else:
                        answer = http.post("/api/search", json={"q": q, "k": 10})
                    answer.raise_for_status()
                    times.append((time.perf_counter() - start) * 1000)
            started = time.perf_counter()
            for image_id in ids:
                start = time.perf_counter()
                answer = http.get(f"/api/images/{image_id}/file")
                answer.raise_for_status()
                file_ms.append((time.perf_counter() - start) * 1000)
                sent += len(answer.content)
            seconds = time.perf_counter() - started
        return {"get_cached_ms": percentiles(get_ms), "post_ms": percentiles(post_ms),
                "file_ms": percentiles(file_ms),
                "file_mib_per_s": round(sent / 2**20 / seconds, 1), "files": len(ids)}  # fmt: skip

    return measure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    if not DB.exists():
        raise SystemExit("run `python -m bench.ingest` first: it builds the ads377 collection")
    clip = str(random_vit_b_32())
    # warm-up queries are distinct from the measured ones: the searcher caches query embeddings
    queries = known_item_queries(args.queries + 10)
    warmup, queries = queries[-10:], queries[:-10]

    with Library(Settings(db=DB, clip_model=clip)) as library:
        points = library.store.count()
        ids = [image_id for image_id, _ in library.store.scroll(fields=["sha256"])]
        for q in warmup:
            library.search(SearchRequest(q=q, k=10))
        engine_ms = []
        for q in queries:
            start = time.perf_counter()
            library.search(SearchRequest(q=q, k=10))
            engine_ms.append((time.perf_counter() - start) * 1000)

    http = time_http(queries, warmup, also=body_and_file_times(queries, ids))
    startup_s, extra = http["startup_s"], http["also"]

    engine, over_http = percentiles(engine_ms), http["ms"]
    data = {
        "points": points,
        "queries": len(queries),
        "engine_ms": engine,
        "http_ms": over_http,
        "http_over_engine_p50": round(over_http["p50"] / engine["p50"], 3),
        "http_over_engine_p95": round(over_http["p95"] / engine["p95"], 3),
        "serve_startup_to_first_answer_s": round(startup_s, 2),
        "get_cached_ms": extra["get_cached_ms"],
        "post_json_ms": extra["post_ms"],
        "post_over_get_p50": round(extra["post_ms"]["p50"] / extra["get_cached_ms"]["p50"], 3),
        "file_ms": extra["file_ms"],
        "file_mib_per_s": extra["file_mib_per_s"],
    }
    md = f"""# HTTP API latency vs engine-only ({points} points, ads377)

{len(queries)} known-item statements (hybrid, k=10, CLIP ViT-B/32 architecture with random weights,
MiniLM, BM25), same queries in both phases of one run, sequential, after 10 warm-up queries.

| path | p50 ms | p95 ms | p99 ms |
|---|---|---|---|
| engine (`Library.search`, in process) | {engine["p50"]} | {engine["p95"]} | {engine["p99"]} |
| HTTP `GET /api/search` (`adsearch serve`) | {over_http["p50"]} | {over_http["p95"]} | {over_http["p99"]} |
| second pass (query embeddings cached), `GET /api/search` | {extra["get_cached_ms"]["p50"]} | {extra["get_cached_ms"]["p95"]} | {extra["get_cached_ms"]["p99"]} |
| second pass, alternated with it: `POST /api/search`, JSON body (read whole before it takes a slot) | {extra["post_ms"]["p50"]} | {extra["post_ms"]["p95"]} | {extra["post_ms"]["p99"]} |
| HTTP `GET /api/images/ID/file`, each of the {extra["files"]} originals (sha256 checked before sending) | {extra["file_ms"]["p50"]} | {extra["file_ms"]["p95"]} | {extra["file_ms"]["p99"]} |

API overhead: HTTP/engine = {data["http_over_engine_p50"]}x at p50, {data["http_over_engine_p95"]}x at p95.
`adsearch serve` startup to first answer: {data["serve_startup_to_first_answer_s"]} s.
POST/GET (cached) = {data["post_over_get_p50"]}x at p50. Originals served at {data["file_mib_per_s"]} MiB/s, one at a time (each read, size- and sha256-checked, then sent).
"""
    print(md)
    write_results("api", data, md)


if __name__ == "__main__":
    main()
