"""Shared helpers for benchmarks: machine facts, percentiles, and writing bench/results/NAME.{md,json}."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / ".work"
ADS377 = ROOT.parent / "shared" / "data" / "ads377"


def machine() -> dict:
    """Where and when a benchmark ran."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        )
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit + ("+dirty" if dirty else ""),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def percentiles(values_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean of a list of milliseconds."""
    arr = np.asarray(values_ms)
    return {
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
        "p99": round(float(np.percentile(arr, 99)), 3),
        "mean": round(float(arr.mean()), 3),
        "n": len(values_ms),
    }


def write_results(name: str, data: dict, markdown: str) -> None:
    """Write bench/results/NAME.json and NAME.md (the markdown gets the machine block appended)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine(), **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    m = data["machine"]
    footer = (
        f"\n\n---\nMachine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}; "
        f"commit {m['commit']}; {m['date']}.\n"
    )
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + footer)
    print(f"wrote {RESULTS / name}.md and .json")


def known_item_queries(n: int) -> list[str]:
    """The first `n` known-item statements of ads377 (cycled when `n` is larger than the set)."""
    lines = (ADS377 / "queries" / "known_item.tsv").read_text().splitlines()
    queries = [line.split("\t", 1)[1] for line in lines if "\t" in line]
    return (queries * (n // len(queries) + 1))[:n]


@contextmanager
def served(app):
    """`app` under uvicorn on a free 127.0.0.1 port in a thread of this process; yields its URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
