"""Hybrid query latency at 10k and 100k points: Qdrant Edge (ours) vs qdrant-client local mode.

Collections are the 377 real points of bench/ingest.py's ads377 collection, replicated: copy c of a
point has its dense vectors moved by Gaussian noise (cosine ~0.9 to the original, renormalised), its
sparse term weights scaled by U(0.7, 1.3) with 15% of the terms dropped, and its payload copied with
its own path and sha256 (copy 0 is the original). Every point keeps the real payload, word boxes
included, so the store does real payload work.

500 mixed queries, all distinct (so the query-embedding cache never answers): 250 long annotator
statements (ads377 known-item set) and 250 short brand-style queries (1-3 consecutive confidently
read words of an ad's OCR text). Hybrid mode, all three channels, k=10, including query encoding
(CLIP ViT-B/32 text tower with random weights, MiniLM, BM25). Measured in one run:

- engine: `Searcher.search` in process on the embedded Qdrant Edge store, with adaptive fusion (the
  default) and fixed fusion side by side (each query both ways, the order alternating);
- the same engine on qdrant-client's local mode (the embedded store seed-style projects use), on the
  first `--local-queries` of the same queries (it is far slower);
- HTTP: `GET /api/search` to `adsearch serve` on the Edge store, plus the server's startup time to its
  first answer and its memory (RSS) after the queries.

    .venv/bin/python -m bench.query [--sizes 10000,100000] [--queries 500] [--local-queries 50]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator

import numpy as np

from bench.api import time_http
from bench.common import WORK, known_item_queries, percentiles, write_results
from bench.ingest import DB, random_vit_b_32
from engine.models.encoders import Encoders, load_encoders
from engine.search import Searcher
from engine.settings import Settings
from engine.store import ClientStore, EdgeStore, PointData, SparseVec, point_id

FUSIONS = ("adaptive", "fixed")  # the default first; fixed side by side

_WORD = re.compile(r"^[A-Za-z][A-Za-z'&-]{2,}$")


def source_points() -> tuple[list[PointData], dict]:
    """Every point of the ads377 collection, and its metadata."""
    with EdgeStore(DB, "ads") as store:
        return list(store.points()), store.metadata()


def _noisy(vector: list[float], rng: np.random.Generator, sigma: float) -> list[float]:
    v = np.asarray(vector, dtype=np.float32)
    v = v + rng.normal(scale=sigma / np.sqrt(len(v)), size=len(v)).astype(np.float32)
    return (v / np.linalg.norm(v)).tolist()


def replicate(source: list[PointData], n: int, batch: int = 512) -> Iterator[list[PointData]]:
    """`n` points made from the source points (see the module docstring), in batches."""
    rng = np.random.default_rng(n)
    out: list[PointData] = []
    for i in range(n):
        copy, index = divmod(i, len(source))
        pid, vectors, payload = source[index].id, source[index].vectors, source[index].payload
        if copy:
            new = {}
            for name, value in vectors.items():
                if isinstance(value, SparseVec) and not value.indices:
                    new[name] = value
                elif isinstance(value, SparseVec):
                    keep = rng.random(len(value.indices)) >= 0.15
                    keep[0] = True
                    scale = rng.uniform(0.7, 1.3, size=len(value.indices))
                    new[name] = SparseVec(
                        [t for t, k in zip(value.indices, keep, strict=True) if k],
                        [float(w * s) for w, s, k in zip(value.values, scale, keep, strict=True) if k],
                    )
                else:
                    new[name] = _noisy(value, rng, sigma=0.48)  # cosine ~0.9 to the original
            sha = f"{payload['sha256'][:56]}{copy:08x}"
            payload = {**payload, "sha256": sha, "paths": [f"{p}#copy{copy}" for p in payload["paths"]]}
            pid, vectors = point_id(sha), new
        out.append(PointData(pid, vectors, payload))
        if len(out) == batch:
            yield out
            out = []
    if out:
        yield out


def build(store, source, n: int, dims: dict[str, int], metadata: dict) -> dict[str, float]:
    """Fill a store with `n` replicated points; seconds spent upserting and building indexes."""
    store.ensure_collection(dims)
    return fill(store, replicate(source, n), metadata)


def fill(store, batches, metadata: dict) -> dict[str, float]:
    """Upsert the batches, then build the indexes; seconds of each."""
    start = time.perf_counter()
    for points in batches:
        store.upsert(points)
    store.flush()
    upsert_s = time.perf_counter() - start
    start = time.perf_counter()
    store.optimize()
    optimize_s = time.perf_counter() - start
    store.update_metadata({k: v for k, v in metadata.items() if k != "dims"})
    return {"upsert_s": round(upsert_s, 1), "optimize_s": round(optimize_s, 1)}


def mixed_queries(source: list[PointData], n: int) -> list[str]:
    """n/2 known-item statements and n/2 short queries cut from confidently read OCR lines, distinct."""
    rng = np.random.default_rng(7)
    short: list[str] = []
    for point in source:
        lines = defaultdict(list)
        for w in point.payload.get("ocr_words", []):
            if w["confidence"] >= 80 and _WORD.match(w["text"]):
                lines[(w["block"], w["paragraph"], w["line"])].append(w["text"])
        for words in lines.values():
            size = int(rng.integers(1, 4))
            start = int(rng.integers(0, max(1, len(words) - size + 1)))
            short.append(" ".join(words[start : start + size]))
    short = list(dict.fromkeys(q for q in short if len(q) >= 4))
    rng.shuffle(short)
    long = list(dict.fromkeys(known_item_queries(265)))
    queries = list(dict.fromkeys(long[: n // 2] + short[: n - n // 2]))
    rng.shuffle(queries)
    return queries


def time_engine(
    searcher: Searcher, queries: list[str], fusions: tuple[str, ...] = ("adaptive",)
) -> tuple[list[float], dict[str, list[float]], dict[str, list[float]]]:
    """Per-query wall milliseconds and per-stage timings of hybrid searches with the first of
    `fusions`, and every fusion's milliseconds (each query searched once per fusion, the order
    alternating query by query: a side-by-side comparison in one run)."""
    totals: dict[str, list[float]] = {f: [] for f in fusions}
    stages = defaultdict(list)
    for n, q in enumerate(queries):
        for fusion in fusions if n % 2 == 0 else fusions[::-1]:
            start = time.perf_counter()
            response = searcher.search(q, k=10, fusion=fusion)
            totals[fusion].append((time.perf_counter() - start) * 1000)
            if fusion == fusions[0]:
                for stage, ms in response.timings_ms.items():
                    stages[stage].append(ms)
    return totals[fusions[0]], stages, totals


def run_size(n: int, source, meta, encoders, settings, queries, warmup, local_queries: int) -> dict:
    print(f"--- {n} points", flush=True)
    db = WORK / f"scale-{n}-db"
    shutil.rmtree(db, ignore_errors=True)
    result: dict = {"points": n}
    with EdgeStore(db, settings.collection) as store:
        result["edge_build"] = build(store, source, n, meta["dims"], meta)
        searcher = Searcher(settings, encoders, store)
        time_engine(searcher, warmup, FUSIONS)
        total, stages, by_fusion = time_engine(searcher, queries, FUSIONS)
    result["edge"] = {
        "total_ms": percentiles(total),
        "stages_ms": {s: percentiles(v) for s, v in stages.items()},
    }
    result["edge_fixed"] = {"total_ms": percentiles(by_fusion["fixed"])}
    result["adaptive_cost_p50_ms"] = round(
        result["edge"]["total_ms"]["p50"] - percentiles(by_fusion["fixed"])["p50"], 2
    )
    print("edge", result["edge"]["total_ms"], flush=True)

    from qdrant_client import QdrantClient

    with tempfile.TemporaryDirectory() as tmp:
        store = ClientStore(QdrantClient(path=tmp), settings.collection)
        result["local_build"] = build(store, source, n, meta["dims"], meta)
        searcher = Searcher(settings, encoders, store)
        subset = queries[:local_queries]
        time_engine(searcher, warmup[:2])
        local_total, local_stages, _ = time_engine(searcher, subset)
        store.close()
    edge_subset = total[:local_queries]
    result["local"] = {
        "queries": len(subset),
        "total_ms": percentiles(local_total),
        "qdrant_ms": percentiles(local_stages["qdrant"]),
    }
    result["edge_same_subset"] = {
        "total_ms": percentiles(edge_subset),
        "qdrant_ms": percentiles(stages["qdrant"][:local_queries]),
    }
    result["speedup_vs_local"] = {
        "total_p50": round(
            result["local"]["total_ms"]["p50"] / result["edge_same_subset"]["total_ms"]["p50"], 1
        ),
        "qdrant_p50": round(
            result["local"]["qdrant_ms"]["p50"] / result["edge_same_subset"]["qdrant_ms"]["p50"], 1
        ),
    }
    print("local", result["local"]["total_ms"], flush=True)
    result["http"] = time_http(queries, warmup, db)
    print("http", result["http"], flush=True)
    return result


def ads377_inputs() -> tuple[list[PointData], dict, Settings, Encoders]:
    """The ads377 points to replicate and their metadata, with settings and encoders for the random
    ViT-B/32 CLIP they were made with."""
    if not DB.exists():
        raise SystemExit("run `python -m bench.ingest` first: it builds the ads377 collection")
    source, meta = source_points()
    settings = Settings(clip_model=str(random_vit_b_32()))
    return source, meta, settings, load_encoders(settings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--local-queries", type=int, default=50)
    args = parser.parse_args(argv)
    source, meta, settings, encoders = ads377_inputs()
    all_queries = mixed_queries(source, args.queries + 10)
    warmup, queries = all_queries[-10:], all_queries[:-10]
    sizes = [run_size(int(n), source, meta, encoders, settings, queries, warmup, args.local_queries)
             for n in args.sizes.split(",")]  # fmt: skip
    data = {
        "queries": len(queries),
        "query_mix": "half known-item statements, half 1-3 word OCR snippets",
        "mode": "hybrid (image, text, keywords)",
        "precision": encoders.precision,
        "sizes": sizes,
    }
    write_results("query", data, report(data))


def _row(name: str, p: dict) -> str:
    return f"| {name} | {p['p50']} | {p['p95']} | {p['p99']} |"


def report(data: dict) -> str:
    md = [
        "# Hybrid query latency at scale: Qdrant Edge vs qdrant-client local mode, engine and HTTP",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        f"{data['queries']} queries ({data['query_mix']}), {data['mode']}, k=10, encoders {data['precision']}.",
    ]
    for size in data["sizes"]:
        edge, local, same, http = size["edge"], size["local"], size["edge_same_subset"], size["http"]
        md += [
            "",
            f"## {size['points']:,} points",
            "",
            "| path | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|",
            _row("engine, Qdrant Edge (all queries, incl. encoding; adaptive fusion)", edge["total_ms"]),
            _row(
                "engine, Qdrant Edge, fixed fusion (same queries, side by side)",
                size["edge_fixed"]["total_ms"],
            ),
            *[_row(f"&nbsp;&nbsp;stage {s}", p) for s, p in edge["stages_ms"].items()],
            _row("HTTP `GET /api/search`, Qdrant Edge (all queries)", http["ms"]),
            _row(f"engine, Qdrant Edge (first {local['queries']} queries)", same["total_ms"]),
            _row(f"engine, qdrant-client local mode (same {local['queries']})", local["total_ms"]),
            _row(f"&nbsp;&nbsp;Qdrant part, Edge (same {local['queries']})", same["qdrant_ms"]),
            _row(f"&nbsp;&nbsp;Qdrant part, local mode (same {local['queries']})", local["qdrant_ms"]),
            "",
            f"Adaptive fusion (the default) costs {size['adaptive_cost_p50_ms']} ms at p50 over fixed weights "
            "(its first look at the keywords channel: stage first_look; target <= 3 ms at 100,000 points).",
            f"Edge vs local mode, same queries, same run: {size['speedup_vs_local']['total_p50']}x faster "
            f"end to end at p50 ({size['speedup_vs_local']['qdrant_p50']}x on the store part alone).",
            f"Build: Edge upsert {size['edge_build']['upsert_s']} s + index {size['edge_build']['optimize_s']} s; "
            f"local mode upsert {size['local_build']['upsert_s']} s.",
            f"`adsearch serve`: startup to first answer {http['startup_s']} s; memory after the queries "
            f"{http['server_memory_mib']['rss']} MiB RSS (peak {http['server_memory_mib']['peak']} MiB).",
        ]
    return "\n".join(md)


if __name__ == "__main__":
    main()
