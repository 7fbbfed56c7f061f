"""Load: 16 concurrent clients for 60 s against GET /api/search of `adsearch serve` on localhost.

Uses the ads377 collection built by bench/ingest.py (CLIP ViT-B/32 architecture, random weights).
Each client sends known-item statements one after another; the run is bounded in time and count.

    .venv/bin/python -m bench.load [--clients 16] [--seconds 60]
"""

from __future__ import annotations

import argparse
import threading
import time

import httpx

from bench.api import free_port, start_server
from bench.common import known_item_queries, percentiles, write_results
from bench.ingest import DB


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not DB.exists():
        raise SystemExit("run `python -m bench.ingest` first: it builds the ads377 collection")
    queries = known_item_queries(265)
    port = free_port()
    server, _ = start_server(port, queries[0])
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + args.seconds

    def client(index: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            n = index
            while time.perf_counter() < deadline and n < 100_000:
                start = time.perf_counter()
                try:
                    response = http.get("/api/search", params={"q": queries[n % len(queries)], "k": 10})
                    ok = response.status_code == 200 and response.json()["hits"]
                    problem = None if ok else f"status {response.status_code}"
                except httpx.HTTPError as exc:
                    problem = type(exc).__name__
                with lock:
                    latencies.append((time.perf_counter() - start) * 1000)
                    if problem:
                        errors.append(problem)
                n += args.clients

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    stats = percentiles(latencies)
    data = {
        "clients": args.clients,
        "seconds": args.seconds,
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_s": round(len(latencies) / args.seconds, 1),
        "latency_ms": stats,
    }
    row = [len(latencies), len(errors), data["requests_per_s"], stats["p50"], stats["p95"], stats["p99"]]
    md = f"""# Load: {args.clients} concurrent clients for {args.seconds:.0f} s on GET /api/search

`adsearch serve` on the ads377 collection (hybrid, k=10, CLIP ViT-B/32 architecture with random
weights), clients on the same 2-core machine over localhost.

| requests | errors | requests/s | p50 ms | p95 ms | p99 ms |
|---|---|---|---|---|---|
| {" | ".join(map(str, row))} |

The clients cycle through the 265 known-item statements, so after the first pass the query
embeddings come from the searcher's cache: this measures the server under contention, not encoding.
"""
    write_results("load", data, md)
    print(md)


if __name__ == "__main__":
    main()
