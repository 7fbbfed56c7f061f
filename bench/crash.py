"""Crash safety: kill -9 the ingest at random moments, rerun it, and compare with one clean run.

The corpus is the synthetic sample (23 ads) plus two duplicate copies, ingested with a tiny random
CLIP so that a trial takes seconds. Each trial: start `adsearch ingest` in its own process group,
SIGKILL the whole group (main process and OCR workers) after a random delay, then run the same
ingest again to completion. Pass = the store opens without repair and holds exactly the clean run's
points: same ids, same payloads (ingest time aside), no duplicates, nothing missing.

    .venv/bin/python -m bench.crash [--trials 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

from bench.common import WORK, write_results
from dataset.synthetic import generate
from engine.store import EdgeStore

CORPUS = WORK / "crash-corpus"
CLIP = WORK / "clip-tiny-random"


def adsearch_ingest(db, wait: bool = True) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ADSEARCH_DB": str(db), "ADSEARCH_CLIP_MODEL": str(CLIP)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "ingest", str(CORPUS), "--no-progress", "--batch-size", "4"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    if wait:
        proc.wait(timeout=600)
    return proc


def snapshot(db) -> dict[str, dict]:
    """id -> payload without the time of ingest (the store is opened as a user would: no repair)."""
    with EdgeStore(db, "ads") as store:
        points = {pid: {k: v for k, v in p.items() if k != "ingested_at"} for pid, p in store.scroll()}
        assert store.count() == len(points)
    return points


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    from engine.models.random_clip import save_random_clip

    if not (CLIP / "config.json").exists():
        save_random_clip(CLIP, "tiny")
    shutil.rmtree(CORPUS, ignore_errors=True)
    generate(CORPUS)
    for name in ("000-voltara.png", "001-brisko-burger.jpg"):
        shutil.copy(CORPUS / "images" / name, CORPUS / f"copy-of-{name}")

    clean_db = WORK / "crash-clean"
    shutil.rmtree(clean_db, ignore_errors=True)
    start = time.perf_counter()
    adsearch_ingest(clean_db)
    clean_seconds = time.perf_counter() - start
    clean = snapshot(clean_db)
    print(f"clean run: {len(clean)} points in {clean_seconds:.1f} s", flush=True)

    trials = []
    for _ in range(args.trials):
        db = WORK / "crash-trial"
        shutil.rmtree(db, ignore_errors=True)
        delay = rng.uniform(0.5, clean_seconds * 0.95)
        proc = adsearch_ingest(db, wait=False)
        time.sleep(delay)
        finished_first = proc.poll() is not None
        if not finished_first:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        try:
            partial = len(snapshot(db)) if (db / "ads").exists() else 0
            adsearch_ingest(db)
            after = snapshot(db)
            same = after == clean
            reason = (
                "" if same else f"{len(after)} points vs {len(clean)}; ids equal: {set(after) == set(clean)}"
            )
        except Exception as exc:  # noqa: BLE001 (a trial that cannot even open the store is a failure)
            same, partial, reason = False, -1, f"{type(exc).__name__}: {exc}"
        trials.append(
            {"delay_s": round(delay, 2), "killed": not finished_first, "points_after_kill": partial,
             "passed": same, "reason": reason}
        )  # fmt: skip
        print(trials[-1], flush=True)
    passed = sum(t["passed"] for t in trials)
    killed = sum(t["killed"] for t in trials)
    data = {"trials": len(trials), "passed": passed, "killed_mid_run": killed, "clean_points": len(clean),
            "clean_seconds": round(clean_seconds, 1), "runs": trials}  # fmt: skip
    rows = "\n".join(
        f"| {i + 1} | {t['delay_s']} | {'yes' if t['killed'] else 'finished first'} | "
        f"{t['points_after_kill']} | {'pass' if t['passed'] else 'FAIL ' + t['reason']} |"
        for i, t in enumerate(trials)
    )
    md = f"""# Crash safety: kill -9 during ingest, then rerun

Corpus: {len(clean)} distinct images (the synthetic sample plus 2 duplicate copies); a clean ingest
takes {clean_seconds:.1f} s including start-up. Each trial SIGKILLs the ingest's whole process group at
a random moment, reruns the ingest and compares the store with the clean run (ids and payloads).

**{passed} of {len(trials)} trials passed** ({killed} killed mid-run; the rest finished before the kill).

| trial | kill after s | killed | points left by the killed run | result |
|---|---|---|---|---|
{rows}
"""
    write_results("crash", data, md)
    print(md)


if __name__ == "__main__":
    main()
