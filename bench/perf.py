"""Speed and scale summary: bench/results/perf.md and perf.json from the latest ingest and query runs.

Runs `bench.ingest` and `bench.query` first unless `--summary-only` (then it only collects their
committed results). Keys of perf.json: `ingest` (images/s for limit, pipeline, naive) and `query`
(p50/p95/p99 ms per collection size and per store or path).

    .venv/bin/python -m bench.perf [--summary-only]
"""

from __future__ import annotations

import argparse
import json

from bench.common import RESULTS, write_results

TARGETS = {
    "pipeline_over_limit": 0.9,
    "pipeline_over_naive": 1.8,
    "engine_p50_ms": 30,
    "engine_p99_ms": 80,
    "http_p50_ms": 40,
    "speedup_vs_local": 10,
    "startup_s": 15,
    "rss_mib": 2048,
}


def _keep(p: dict) -> dict:
    return {k: p[k] for k in ("p50", "p95", "p99")}


def summarise(ingest: dict, query: dict) -> tuple[dict, str]:
    """perf.json's data and perf.md's text from ingest.json and query.json."""
    data = {
        "ingest": {**ingest["images_per_s"], "pipeline_over_limit": ingest["pipeline_over_limit"],
                   "pipeline_over_naive": ingest["pipeline_over_naive"]},
        "query": {},
        "targets": TARGETS,
    }  # fmt: skip
    rows = []
    for size in query["sizes"]:
        n = size["points"]
        data["query"][str(n)] = {
            "edge_engine": _keep(size["edge"]["total_ms"]),
            "edge_http": _keep(size["http"]["ms"]),
            "local_engine": _keep(size["local"]["total_ms"]),
            "edge_engine_same_subset": _keep(size["edge_same_subset"]["total_ms"]),
            "speedup_vs_local_p50": size["speedup_vs_local"]["total_p50"],
            "serve_startup_s": size["http"]["startup_s"],
            "serve_rss_mib": size["http"]["server_memory_mib"]["rss"],
        }
        q = data["query"][str(n)]
        stages = size["edge"]["stages_ms"]
        split = ", ".join(
            f"{s.removeprefix('encode_')} {stages[s]['p50']}"
            for s in ("encode_image", "encode_text", "encode_keywords", "qdrant")
            if s in stages
        )
        rows.append(
            f"| {n:,} | {q['edge_engine']['p50']} / {q['edge_engine']['p99']} | {q['edge_http']['p50']} | "
            f"{q['local_engine']['p50']} | {q['speedup_vs_local_p50']}x | {q['serve_startup_s']} | "
            f"{q['serve_rss_mib']:.0f} | {split} |"
        )
    i = data["ingest"]
    md = f"""# Speed and scale (summary of ingest.md and query.md)

2 cores, no GPU; CLIP is the full ViT-B/32 architecture with random weights for every timing.

## Ingest, 377 real ads (details: [ingest.md](ingest.md))

| way | images/s |
|---|---|
| (a) limit: the OCR step alone, one process per core | {i["limit"]} |
| (b) pipeline: `adsearch ingest` | {i["pipeline"]} |
| (c) naive: one image at a time | {i["naive"]} |

(b)/(a) = **{i["pipeline_over_limit"]}** (target >= {TARGETS["pipeline_over_limit"]});
(b)/(c) = **{i["pipeline_over_naive"]}** (target >= {TARGETS["pipeline_over_naive"]}).

## Hybrid queries at scale (details: [query.md](query.md))

All three channels, 500 mixed queries, including query encoding. Targets at 100k: engine p50 <=
{TARGETS["engine_p50_ms"]} ms and p99 <= {TARGETS["engine_p99_ms"]} ms, HTTP p50 <= {TARGETS["http_p50_ms"]} ms,
>= {TARGETS["speedup_vs_local"]}x qdrant-client local mode, startup <= {TARGETS["startup_s"]} s, RSS <= 2 GB.

| points | engine p50 / p99 ms | HTTP p50 ms | local mode p50 ms | Edge vs local | serve startup s | serve RSS MiB | p50 split ms |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

"Edge vs local" is end to end at p50 on the same {query["sizes"][0]["local"]["queries"]} queries (local mode is too slow for all of them).

## Before and after (earlier figures from commit 18bdf31, same machine kind, not the same run)

- Query, 377 points, hybrid: p50 76.6 ms with PyTorch fp32 encoders one after another (CLIP text
  tower 49.7 ms, MiniLM 18.4 ms, Qdrant 5.5 ms). Now the towers run on ONNX Runtime (CLIP int8,
  MiniLM fp32) concurrently: at 100k points p50 {data["query"].get("100000", {}).get("edge_engine", {}).get("p50")} ms.
- Ingest of ads377: 1.58 images/s with PyTorch encoders (encoding busy 53% of wall). Now
  {i["pipeline"]} images/s.

## Ingest ratios: met at the margin, with run-to-run variation

On 2 cores ingest is CPU-bound (pipeline wall ~= its total CPU / 2): the main process needs ~27 s of
CPU for encoding and bookkeeping, ~9% of the OCR workers' ~305 s, so (b)/(a) cannot exceed ~0.92-0.94
here, and when the processes share the cores badly the OCR workers slow by up to ~7%. The previous
full run (commit 392ce4c, same code but CLIP images encoded in fours) measured (b)/(a) = 0.861 and
(b)/(c) = 1.78, below both targets; this run {i["pipeline_over_limit"]} and {i["pipeline_over_naive"]}. Single runs vary by ~8%
on these machines; treat the ingest targets as met at the margin, not with room to spare.
"""
    return data, md


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.summary_only:
        from bench import ingest, query

        ingest.main([])
        query.main([])
    data, md = summarise(
        json.loads((RESULTS / "ingest.json").read_text()), json.loads((RESULTS / "query.json").read_text())
    )
    print(md)
    write_results("perf", data, md)


if __name__ == "__main__":
    main()
