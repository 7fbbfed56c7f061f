"""Operating it (issue #24): backup and restore of ads377 and of 100,000 points, what a running backup
costs the searches served meanwhile, and what the access log and the metrics add to a search.

- backup / restore: `backup_library` into a new folder (time, size), `check_backup` (sha256 of every
  file), `restore_backup` into a new folder (time), for the ads377 store (bench/ingest.py) and the
  100,000-point store of bench/analyst.py; the restore is checked to hold every point.
- serve-time cost: the 100,000-point library served by uvicorn in this process (as `adsearch serve`
  does); one client sends hybrid searches one at a time over HTTP, first with nothing else running,
  then while POST /api/admin/backup runs (the backup runs in the server process, as it does in use);
  p50/p99 of each phase, same queries.
- access log + metrics overhead: the same library behind two apps served side by side, the full app
  and one without the access-log/metrics middleware; the same query sent to each in turn, pair by
  pair; p50 of each and the difference.

    .venv/bin/python -m bench.ops
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager, redirect_stderr
from pathlib import Path

import httpx

from bench.common import WORK, percentiles, served, write_results

ADS377_DB = WORK / "ads377-db"
BIG_DB = WORK / "analyst-100000-db"
QUERIES = ["free delivery offer", "best deal w0042", "new sale w0100 w0200", "save now", "w0007 w0777",
           "cheap burger deal", "fast car", "summer travel sale"]  # fmt: skip


def settings_for(db: Path, backups: Path | None = None):
    from api.settings import ServeSettings

    return ServeSettings(db=db, clip_model=str(WORK / "no-clip-weights"), backup_dir=backups)


def time_backup(db: Path, work: Path) -> dict:
    """Backup, check and restore of the library in `db`."""
    from engine.admin.backup import backup_library
    from engine.admin.restore import check_backup, restore_backup
    from engine.library import Library

    with Library(settings_for(db)) as library:
        points = library.store.count()
        start = time.perf_counter()
        manifest = backup_library(library, str(work / "backup"))
        backup_s = time.perf_counter() - start
    start = time.perf_counter()
    check_backup(str(work / "backup"))
    check_s = time.perf_counter() - start
    start = time.perf_counter()
    restored = restore_backup(str(work / "backup"), settings_for(work / "restored"))
    restore_s = time.perf_counter() - start
    assert restored["points"] == points, (restored, points)
    size = sum(f["bytes"] for f in manifest["files"].values())
    shutil.rmtree(work / "restored")
    return {"points": points, "backup_s": round(backup_s, 2), "check_s": round(check_s, 2),
            "restore_s": round(restore_s, 2), "backup_mib": round(size / 2**20, 1),
            "points_per_s_backup": round(points / backup_s), "points_per_s_restore": round(points / restore_s)}  # fmt: skip


def bare_app(library):
    """The app without the access-log/metrics middleware (the guards stay)."""
    from api.access_log import AccessLog
    from api.app import create_app

    app = create_app(library)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not AccessLog]
    return app


@contextmanager
def quiet_stderr():
    with open(os.devnull, "w") as sink, redirect_stderr(sink):
        yield


def search_ms(client: httpx.Client, q: str) -> float:
    start = time.perf_counter()
    answer = client.get("/api/search", params={"q": q, "k": 10})
    answer.raise_for_status()
    return (time.perf_counter() - start) * 1000


def time_serving(db: Path, work: Path, rounds: int) -> dict:
    """Search latency idle vs during a backup, and with vs without the access log and metrics."""
    from api.app import create_app
    from engine.library import Library

    library = Library(settings_for(db, work / "serve-backups"))
    # the access lines are written (to /dev/null: formatting and writing them is part of the cost)
    with library, served(create_app(library)) as full, served(bare_app(library)) as bare, quiet_stderr():
        with_log = httpx.Client(base_url=full, timeout=300)
        without = httpx.Client(base_url=bare, timeout=300)
        for q in QUERIES:  # warm-up: models loaded, caches filled
            search_ms(with_log, q), search_ms(without, q)
        full_ms, bare_ms = [], []
        for n in range(rounds):
            q = QUERIES[n % len(QUERIES)]
            first, second = (with_log, without) if n % 2 else (without, with_log)  # alternate who goes first
            a, b = search_ms(first, q), search_ms(second, q)
            (full_ms, bare_ms)[first is without].append(a)
            (full_ms, bare_ms)[second is without].append(b)
        idle = [search_ms(with_log, QUERIES[n % len(QUERIES)]) for n in range(rounds)]
        during, done = [], threading.Event()

        def backup() -> None:
            client = httpx.Client(base_url=full, timeout=3600)
            answer = client.post("/api/admin/backup", json={"name": "during"})
            answer.raise_for_status()
            done.set()

        thread = threading.Thread(target=backup)
        started = time.perf_counter()
        thread.start()
        n = 0
        while not done.is_set():
            during.append(search_ms(with_log, QUERIES[n % len(QUERIES)]))
            n += 1
        thread.join()
        backup_s = time.perf_counter() - started
    full_p, bare_p = percentiles(full_ms), percentiles(bare_ms)
    return {
        "overhead": {"with_ms": full_p, "without_ms": bare_p,
                     "p50_added_ms": round(full_p["p50"] - bare_p["p50"], 3)},
        "during_backup": {"idle_ms": percentiles(idle), "during_ms": percentiles(during),
                          "backup_s": round(backup_s, 1)},
    }  # fmt: skip


def report(data: dict) -> str:
    rows = "\n".join(
        f"| {name} | {r['points']:,} | {r['backup_s']} s ({r['points_per_s_backup']:,} pt/s) | "
        f"{r['backup_mib']} MiB | {r['check_s']} s | {r['restore_s']} s ({r['points_per_s_restore']:,} pt/s) |"
        for name, r in data["backup"].items()
    )
    o, d = data["serving"]["overhead"], data["serving"]["during_backup"]
    return f"""# Operating it: backup, restore, serving during a backup, log and metrics overhead

`.venv/bin/python -m bench.ops` (bench/ops.py says how each figure is taken). One run, one machine.

## Backup and restore

| store | points | backup | size | check (sha256) | restore |
|---|---|---|---|---|---|
{rows}

The backup holds every vector (float32, Parquet with zstd), payload and sidecar field, the collection
metadata, watches, jobs and uploads. Restore re-builds the store (its HNSW indexes included).

## Searches served while a backup runs (100,000 points, hybrid, one client, HTTP)

| | p50 | p99 | searches |
|---|---|---|---|
| idle | {d["idle_ms"]["p50"]} ms | {d["idle_ms"]["p99"]} ms | {d["idle_ms"]["n"]} |
| during POST /api/admin/backup | {d["during_ms"]["p50"]} ms | {d["during_ms"]["p99"]} ms | {d["during_ms"]["n"]} |

The backup took {d["backup_s"]} s in the server process; searches go on (writes wait for it).

## Access log and metrics on `/api/search` (side by side, pair by pair)

| app | p50 | p99 |
|---|---|---|
| with the access log and metrics | {o["with_ms"]["p50"]} ms | {o["with_ms"]["p99"]} ms |
| without | {o["without_ms"]["p50"]} ms | {o["without_ms"]["p99"]} ms |

Added at p50: **{o["p50_added_ms"]} ms** (target: under 1 ms).
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="searches per phase (default 200)")
    args = parser.parse_args(argv)
    data: dict = {"backup": {}}
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        for name, db in (("ads377", ADS377_DB), ("100k", BIG_DB)):
            (Path(tmp) / name).mkdir()
            data["backup"][name] = time_backup(db, Path(tmp) / name)
            print(name, data["backup"][name], flush=True)
        data["serving"] = time_serving(BIG_DB, Path(tmp), args.rounds)
        print(data["serving"], flush=True)
    write_results("ops", data, report(data))


if __name__ == "__main__":
    main()
