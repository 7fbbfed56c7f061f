"""Hybrid query latency on the ads377 collection built by bench/ingest.py, including query encoding.

100 queries (the first 100 known-item statements of ads377, i.e. long natural-language queries)
in hybrid mode with all three channels (CLIP text tower ViT-B/32 with random weights, MiniLM, BM25).

    .venv/bin/python -m bench.query [--queries 100]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from bench.common import known_item_queries, percentiles, write_results
from bench.ingest import DB, random_vit_b_32
from engine.config import Settings
from engine.encoders import load_encoders
from engine.search import Searcher
from engine.store import EdgeStore


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args(argv)
    if not DB.exists():
        raise SystemExit("run `python -m bench.ingest` first: it builds the ads377 collection")
    settings = Settings(db=DB, clip_model=str(random_vit_b_32()))
    encoders = load_encoders(settings)
    # warm-up queries are distinct from the measured ones: the searcher caches query embeddings
    queries = known_item_queries(args.queries + 5)
    warmup, queries = queries[-5:], queries[:-5]
    with EdgeStore(DB, settings.collection) as store:
        searcher = Searcher(settings, encoders, store)
        points = store.count()
        for q in warmup:
            searcher.search(q, k=10)
        total, stages = [], defaultdict(list)
        for q in queries:
            start = time.perf_counter()
            response = searcher.search(q, k=10)
            total.append((time.perf_counter() - start) * 1000)
            for stage, ms in response.timings_ms.items():
                stages[stage].append(ms)
    data = {
        "points": points,
        "queries": len(queries),
        "mode": "hybrid",
        "channels": response.channels,
        "total_ms": percentiles(total),
        "stages_ms": {stage: percentiles(v) for stage, v in stages.items()},
    }
    rows = "\n".join(
        f"| {stage} | {p['p50']} | {p['p95']} |"
        for stage, p in [("total", data["total_ms"])] + list(data["stages_ms"].items())
    )
    md = f"""# Hybrid query latency on ads377 ({points} points)

{len(queries)} known-item statements as queries, hybrid mode ({", ".join(response.channels)}), k=10,
embedded Qdrant Edge, one process, after 5 warm-up queries. Total includes query encoding.

| stage | p50 ms | p95 ms |
|---|---|---|
{rows}
"""
    print(md)
    write_results("query", data, md)


if __name__ == "__main__":
    main()
