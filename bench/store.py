"""Embedded store candidates at 20k points: Qdrant Edge vs qdrant-client local mode.

Same points, same queries, one run. Points carry the real schema: a 512-d image vector, a 384-d text
vector (on 70% of points, as ~30% of real ads have no OCR text) and a BM25-like sparse vector over a
Zipf-distributed vocabulary. Vectors are random: the work a store does does not depend on their
meaning. Queries are the engine's real call: one batch of a 3-prefetch RRF query plus each channel.

    .venv/bin/python -m bench.store [--points 20000] [--queries 100]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import percentiles, write_results
from engine.store import ChannelQuery, ClientStore, EdgeStore, PointData, SparseVec, point_id

DIMS = {"image": 512, "text": 384}
VOCAB = 30_000


def make_points(n: int, seed: int = 0) -> list[PointData]:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, 512)).astype(np.float32)
    text = rng.normal(size=(n, 384)).astype(np.float32)
    points = []
    for i in range(n):
        vectors: dict = {"image": image[i].tolist()}
        if rng.random() < 0.7:
            vectors["text"] = text[i].tolist()
            terms = np.unique(rng.zipf(1.3, size=rng.integers(5, 40)) % VOCAB)
            vectors["keywords"] = SparseVec(terms.tolist(), (1.0 + rng.random(len(terms))).tolist())
        payload = {
            "paths": [f"/ads/{i}.jpg"],
            "ocr_text": f"ad number {i} " * 10,
            "width": 800,
            "height": 600,
        }
        points.append(PointData(point_id(f"{i:064x}"), vectors, payload))
    return points


def make_queries(n: int, seed: int = 1) -> list[list[ChannelQuery]]:
    rng = np.random.default_rng(seed)
    queries = []
    for _ in range(n):
        terms = sorted({int(t) % VOCAB for t in rng.zipf(1.3, size=4)})
        queries.append(
            [
                ChannelQuery("image", rng.normal(size=512).tolist()),
                ChannelQuery("text", rng.normal(size=384).tolist()),
                ChannelQuery("keywords", SparseVec(terms, [1.0] * len(terms))),
            ]
        )
    return queries


def run(store, points, queries, batch=256) -> dict:
    store.ensure_collection(DIMS)
    start = time.perf_counter()
    for i in range(0, len(points), batch):
        store.upsert(points[i : i + batch])
    store.flush()
    upsert_s = time.perf_counter() - start
    start = time.perf_counter()
    store.optimize()
    optimize_s = time.perf_counter() - start
    for qs in queries[:5]:  # warm-up
        store.search(qs, [1.0, 1.0, 1.0], limit=10, offset=0, prefetch_limit=100, rrf_k=60)
    latencies = []
    for qs in queries:
        start = time.perf_counter()
        store.search(qs, [1.0, 1.0, 1.0], limit=10, offset=0, prefetch_limit=100, rrf_k=60)
        latencies.append((time.perf_counter() - start) * 1000)
    return {
        "upsert_points_per_s": round(len(points) / upsert_s, 1),
        "upsert_s": round(upsert_s, 2),
        "optimize_s": round(optimize_s, 2),
        "hybrid_query_ms": percentiles(latencies),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args(argv)
    from qdrant_client import QdrantClient

    points, queries = make_points(args.points), make_queries(args.queries)
    results = {}
    tmp = Path(tempfile.mkdtemp(prefix="adsearch-store-bench-"))
    try:
        print(f"Qdrant Edge, {args.points} points ...", flush=True)
        with EdgeStore(tmp / "edge", "ads") as store:
            results["qdrant_edge"] = run(store, points, queries)
        print(results["qdrant_edge"], flush=True)
        print(f"qdrant-client local mode (on disk), {args.points} points ...", flush=True)
        with ClientStore(QdrantClient(path=str(tmp / "local")), "ads") as store:
            results["qdrant_client_local"] = run(store, points, queries)
        print(results["qdrant_client_local"], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    edge, local = results["qdrant_edge"], results["qdrant_client_local"]
    ratios = {
        "query_p50_speedup": round(local["hybrid_query_ms"]["p50"] / edge["hybrid_query_ms"]["p50"], 1),
        "upsert_speedup": round(edge["upsert_points_per_s"] / local["upsert_points_per_s"], 1),
    }
    md = [
        f"# Embedded store: Qdrant Edge vs qdrant-client local mode ({args.points:,} points)",
        "",
        "One run, same points and queries. Query = the engine's real call: one batch of a hybrid RRF query",
        "(3 prefetches of 100: image 512-d, text 384-d, BM25 sparse with IDF) plus each channel alone; k=10.",
        "Query encoding is not included here (see query.md).",
        "",
        "| store | upsert points/s | optimize s | query p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        q = r["hybrid_query_ms"]
        row = [f"{r['upsert_points_per_s']:,}", r["optimize_s"], q["p50"], q["p95"], q["p99"]]
        md.append(f"| {name} | " + " | ".join(map(str, row)) + " |")
    md += [
        "",
        f"Qdrant Edge is {ratios['query_p50_speedup']}x faster per query (p50) and upserts "
        f"{ratios['upsert_speedup']}x faster. Decision: Qdrant Edge is the embedded default; "
        "qdrant-client stays the path to a Qdrant server or cluster.",
    ]
    write_results(
        "store", {"points": args.points, "queries": args.queries, **results, "ratios": ratios}, "\n".join(md)
    )


if __name__ == "__main__":
    main()
