"""The analyst workflow at 100,000 points (issue #23): trends, export, and what watches add to ingest.

The store: N synthetic points with the real schema (image 512-d, text 384-d, creative 99-d, BM25
keywords from the real encoder over each point's text), payloads with the built-in fields plus
metadata `date` (spread over four years), `brand` (50) and `category` (12). Dense vectors are
random (encoding 100k texts with MiniLM takes longer than the benchmark's budget); the ranked
trend's search therefore ranks by BM25 for real and by the dense channels at random, which costs
the same time. Built once into bench/.work/analyst-N-db and reused.

Measured, one after the other on an idle machine:
- trend: a 24-month trend of a filter (exact: 24 Qdrant counts) and of a ranked query (top 100),
  p50/p99 over 30 runs each after 3 warm-ups, through `Library.trend`;
- export: every point (no query) as csv, jsonl and parquet, and a quarter of them, each in a fresh
  process: rows/s and peak RSS (VmHWM), so RSS against the row count shows whether memory is flat;
- watches: the bundled sample (23 ads) ingested into a fresh library with 0, 10 and 100 watches
  (half exact filters, half ranked queries): the check timed alone (median of 5), per new ad and against the ingest.

    .venv/bin/python -m bench.analyst [--points 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.common import WORK, percentiles, write_results

BRANDS = [f"brand{i:02d}" for i in range(50)]
CATEGORIES = ["food", "cars", "travel", "finance", "fashion", "tech", "health", "home", "sports", "pets",
              "media", "beauty"]  # fmt: skip
WORDS = [f"w{i:04d}" for i in range(3000)] + ["offer", "sale", "new", "free", "deal", "best", "save"]
START = datetime(2021, 1, 1, tzinfo=UTC)
DAYS = 4 * 365
BATCH = 1000


def build(db: Path, n: int) -> None:
    """The synthetic store (skipped when it holds n points already)."""
    from engine.models.encoders import load_encoders
    from engine.schema import point_id
    from engine.settings import Settings
    from engine.store import PointData, open_store

    settings = Settings(db=db, clip_model=str(WORK / "no-clip-weights"))
    store = open_store(settings)
    if (store.dims() or {}) and store.count() == n:
        store.close()
        return
    sparse = load_encoders(settings).sparse
    store.ensure_collection({"image": 512, "text": 384, "creative": 99})
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    for first in range(0, n, BATCH):
        size = min(BATCH, n - first)
        texts = [f"{BRANDS[rng.integers(50)]} " + " ".join(rng.choice(WORDS, 8)) for _ in range(size)]
        keywords = sparse.encode_documents(texts)
        points = []
        for i, (text, kw) in enumerate(zip(texts, keywords, strict=True)):
            number = first + i
            sha = hashlib.sha256(f"ad-{number}".encode()).hexdigest()
            vectors = {
                name: _unit(rng, dim) for name, dim in (("image", 512), ("text", 384), ("creative", 99))
            }
            points.append(
                PointData(point_id(sha), {**vectors, "keywords": kw}, _payload(number, sha, text, rng))
            )
        store.upsert(points)
        print(f"\rbuilding: {first + size}/{n} points", end="", flush=True)
    print(f" ({time.perf_counter() - started:.0f} s)")
    fields = {"date": "datetime", "brand": "keyword", "category": "keyword"}
    store.update_metadata({"fields": fields, "visual": False})
    from engine.filters import BUILTIN_FIELDS

    store.ensure_indexes({**{k: v for k, v in BUILTIN_FIELDS.items() if k != "has_text"}, **fields})
    store.optimize()
    store.close()


def _unit(rng: np.random.Generator, dim: int) -> list[float]:
    v = rng.standard_normal(dim).astype(np.float32)
    return (v / np.linalg.norm(v)).tolist()


def _payload(number: int, sha: str, text: str, rng: np.random.Generator) -> dict:
    date = START + timedelta(days=int(rng.integers(DAYS)), seconds=int(rng.integers(86400)))
    stamp = (START + timedelta(seconds=number)).isoformat(timespec="milliseconds")
    return {
        "paths": [f"/ads/{number // 1000:03d}/{number}.jpg"], "sha256": sha, "bytes": 50_000, "width": 600,
        "height": 800, "format": "JPEG", "ocr_text": text, "has_text": True, "ocr_confidence": 90.0,
        "ingested_at": stamp, "file_date": stamp, "folder": f"{number // 1000:03d}",
        "date": date.isoformat(timespec="seconds"), "brand": text.split()[0],
        "category": CATEGORIES[number % len(CATEGORIES)],
    }  # fmt: skip


def time_trends(db: Path) -> dict:
    """p50/p99 of a 24-month trend: a filter (exact counts) and ranked queries (top 100)."""
    from engine.analysis import TrendRequest
    from engine.library import Library
    from engine.settings import Settings

    window = {"by": "month", "field": "date", "start": "2022-01-01", "end": "2023-12-31"}
    out = {}
    with Library(Settings(db=db, clip_model=str(WORK / "no-clip-weights"))) as library:
        kinds = {
            "filter": [TrendRequest(where=(f"brand={BRANDS[i % 50]}",), **window) for i in range(33)],
            "ranked": [TrendRequest(q=f"{BRANDS[i % 50]} offer", top=100, **window) for i in range(33)],
        }
        for kind, requests in kinds.items():
            buckets, times = 0, []
            for i, request in enumerate(requests):
                start = time.perf_counter()
                answer = library.trend(request)
                if i >= 3:  # warm-ups
                    times.append((time.perf_counter() - start) * 1000)
                buckets = len(answer["buckets"])
            out[kind] = {**percentiles(times), "buckets": buckets}
    return out


def export_child(db: Path, fmt: str, where: list[str], out: Path) -> None:
    """One export in this process; prints rows, seconds and peak RSS (MiB) as JSON."""
    from engine.export import write_rows
    from engine.export.rows import results_export
    from engine.library import Library
    from engine.search import SearchRequest
    from engine.settings import Settings

    with Library(Settings(db=db, clip_model=str(WORK / "no-clip-weights"))) as library:
        start = time.perf_counter()
        export = results_export(library, SearchRequest(where=where))
        rows = write_rows(export.rows, export.columns, fmt, out)
        seconds = time.perf_counter() - start
    peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM"))  # fmt: skip
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mib": round(peak / 1024, 1)}))


def time_exports(db: Path) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("csv", "jsonl", "parquet"):
            for label, where in (("all", []), ("quarter", ["category in [food,cars,travel]"])):
                target = Path(tmp) / f"export.{fmt}"
                cmd = [sys.executable, "-m", "bench.analyst", "--export-child", fmt, "--db", str(db),
                       "--out", str(target), *sum((["--where", w] for w in where), [])]  # fmt: skip
                done = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
                done["rows_per_s"] = round(done["rows"] / done["seconds"])
                done["bytes"] = target.stat().st_size
                out[f"{fmt} {label}"] = done
                print(f"export {fmt} {label}: {done}", flush=True)
    return out


def time_watches() -> dict:
    """Ingest the sample into fresh libraries with 0, 10, 100 watches; the check's share."""
    from dataset.synthetic import generate
    from engine.library import Library
    from engine.settings import Settings
    from engine.watches import Watch, check_watches
    from engine.watches.book import now

    sample = WORK / "analyst-sample"
    if not (sample / "images").is_dir():
        generate(sample)
    out = {}
    for count in (0, 10, 100):
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(db=Path(tmp) / "db", clip_model=str(WORK / "no-clip-weights"))
            with Library(settings) as library:
                for i in range(count):
                    exact = i % 2 == 0
                    watch = Watch(
                        f"w{i}", "" if exact else f"{WORDS[-1 - i % 7]} deal", ["format=PNG"] if exact else []
                    )
                    library.watches.add(watch)
                before = now()
                report = library.ingest([sample / "images"])  # its own check records the matches
                checks = []
                for _ in range(5):  # the same check again: every watch's mark put back before the ingest
                    for watch in library.watches.all():
                        library.watches.record(watch.name, [], before)
                    start = time.perf_counter()
                    check_watches(library)
                    checks.append(time.perf_counter() - start)
            check = float(np.median(checks))
            out[str(count)] = {
                "ingested": report.ingested, "ingest_s": round(report.seconds, 3), "check_s": round(check, 4),
                "check_ms_per_new_ad": round(1000 * check / max(report.ingested, 1), 2),
                "check_share_of_ingest": round(check / report.seconds, 4),
            }  # fmt: skip
            print(f"watches {count}: {out[str(count)]}", flush=True)
    return out


def report(data: dict) -> str:
    t, e, w = data["trend"], data["export"], data["watches"]
    lines = [
        f"# The analyst workflow at {data['points']:,} points (issue #23)", "",
        "Synthetic store (real schema, real BM25 keywords, random dense vectors); see bench/analyst.py.", "",
        "## Trends (24 months, `Library.trend`)", "", "| series | p50 ms | p99 ms | buckets | target p50 <= 150 ms |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for kind in ("filter", "ranked"):
        met = "yes" if t[kind]["p50"] <= 150 else "NO"
        lines.append(
            f"| {kind} | {t[kind]['p50']:.1f} | {t[kind]['p99']:.1f} | {t[kind]['buckets']} | {met} |"
        )
    lines += ["", "## Export (fresh process each)", "", "| format, rows | rows | rows/s | peak RSS MiB | file MiB |",
              "|---|---|---|---|---|"]  # fmt: skip
    for name, x in e.items():
        lines.append(
            f"| {name} | {x['rows']:,} | {x['rows_per_s']:,} | {x['peak_rss_mib']} | {x['bytes'] / 2**20:.1f} |"
        )
    lines += ["", "## Watches: the check after an ingest of the 23-ad sample", "",
              "The check timed alone (median of 5, each watch's mark put back before the ingest, so it "
              "does the same work as the check after the ingest).", "",
              "| watches | ingest s | check s | check ms per new ad | check / ingest | target (10) < 5 % |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for count, x in w.items():
        met = ("yes" if x["check_share_of_ingest"] < 0.05 else "NO") if count == "10" else ""
        lines.append(f"| {count} | {x['ingest_s']} | {x['check_s']} | {x['check_ms_per_new_ad']} | "
                     f"{100 * x['check_share_of_ingest']:.1f} % | {met} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--export-child", metavar="FORMAT", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--where", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_child:
        export_child(args.db, args.export_child, args.where, args.out)
        return
    db = WORK / f"analyst-{args.points}-db"
    build(db, args.points)
    data = {"points": args.points, "trend": time_trends(db)}
    print(f"trend: {data['trend']}", flush=True)
    data["export"] = time_exports(db)
    data["watches"] = time_watches()
    write_results("analyst", data, report(data))


if __name__ == "__main__":
    main()
