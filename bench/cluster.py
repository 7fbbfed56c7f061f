"""Distributed ingest overhead: the local pipeline vs a Dask cluster on the same 2 cores.

The same N ads377 images are ingested into fresh embedded stores, alternately by the local pipeline
(OCR in `workers` processes, encoding batched in the main process) and by `--cluster local:W`
(W single-threaded Dask worker processes, each reading, OCR-ing and encoding whole files). CLIP is the
random-weight full-size ViT-B/32 (its cost does not depend on the weights); ONNX exports are warmed
first. The cluster figure is end to end: it includes starting the cluster and each worker loading
the models. Both runs must store the same point ids. On one machine the point is the overhead, so the
target is a ratio: cluster / local >= 0.85 images/s.

    .venv/bin/python -m bench.cluster [--images 120] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from bench.common import ADS377, RESULTS, WORK, write_results
from engine.ingest.ingestor import IngestHooks
from engine.library import Library
from engine.settings import Settings
from ocr_text import ocr_signature


def image_folder(n: int) -> Path:
    folder = WORK / f"cluster-images-{n}"
    if not folder.exists():
        folder.mkdir(parents=True)
        for path in sorted((ADS377 / "images").rglob("*.jpg"))[:n]:
            (folder / f"{path.parent.name}-{path.name}").symlink_to(path)
    return folder


def one_run(settings: Settings, folder: Path, cluster: str | None) -> dict:
    """One ingest into a fresh store, end to end (opening the library included), with the moment
    each file finished: the second half of the files gives the steady-state rate."""
    db = WORK / "cluster-db"
    shutil.rmtree(db, ignore_errors=True)
    run_settings = settings.with_overrides(db=db, cluster=cluster)
    finished: list[tuple[int, float]] = []  # (files done, seconds): files are written a batch at a time
    start = time.perf_counter()
    hooks = IngestHooks(on_progress=lambda done, _: finished.append((done, time.perf_counter() - start)))
    with Library(run_settings) as library:
        report = library.ingest([folder], hooks=hooks)
        ids = sorted(pid for pid, _ in library.store.scroll(fields=[]))
    seconds = time.perf_counter() - start

    def when(files: int) -> tuple[int, float]:  # the first moment at least `files` were done
        return next((done, at) for done, at in finished if done >= files)

    (half, half_at), (last, last_at) = when(report.ingested // 2), when(report.ingested)
    return {
        "executor": "cluster" if cluster else "local",
        "images": report.ingested,
        "failed": len(report.failed),
        "seconds": round(seconds, 2),
        "images_per_s": round(report.ingested / seconds, 3),
        "first_files_s": round(finished[0][1], 2),
        "steady_images_per_s": round((last - half) / (last_at - half_at), 3),
        "ids": ids,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=2, help="local/cluster pairs, alternated")
    args = parser.parse_args(argv)
    folder = image_folder(args.images)
    clip = WORK / "clip-vit-b-32-random"
    if not clip.exists():
        from engine.models.random_clip import save_random_clip

        save_random_clip(clip, "vit-b-32")
    settings = Settings(clip_model=str(clip), require_visual=True, workers=2)
    from engine.models.encoders import load_encoders

    load_encoders(settings)  # warm the ONNX exports (and their int8 check) once, outside the timings
    runs = []
    for _ in range(args.rounds):
        for cluster in (None, "local:2"):
            runs.append(one_run(settings, folder, cluster))
            print({k: v for k, v in runs[-1].items() if k != "ids"}, flush=True)
    same_points = all(r["ids"] == runs[0]["ids"] for r in runs)
    rate, steady = mean_rate(runs, "images_per_s"), mean_rate(runs, "steady_images_per_s")
    ratio = round(rate["cluster"] / rate["local"], 3)
    steady_ratio = round(steady["cluster"] / steady["local"], 3)
    data = {
        "images": args.images,
        "rounds": args.rounds,
        "images_per_s": rate,
        "steady_images_per_s": steady,
        "ratio_cluster_to_local": ratio,
        "steady_ratio_cluster_to_local": steady_ratio,
        "target_ratio": 0.85,
        "met": ratio >= 0.85,
        "same_points": same_points,
        "runs": [{k: v for k, v in r.items() if k != "ids"} for r in runs],
        "settings": {
            "clip": "random ViT-B/32 (int8 check applies)",
            "ocr": ocr_signature(settings.ocr_settings()),
            "local_workers": 2,
            "cluster": "local:2 (2 worker processes x 1 thread)",
        },  # fmt: skip
    }
    rows = [
        f"| {r['executor']} | {r['images']} | {r['seconds']} | {r['first_files_s']} | {r['images_per_s']} "
        f"| {r['steady_images_per_s']} |"
        for r in data["runs"]
    ]
    md = [
        "# Distributed ingest overhead: local pipeline vs Dask cluster, same 2 cores",
        "",
        f"{args.images} ads377 images, {args.rounds} alternated rounds, fresh embedded store each run. "
        "CLIP: random-weight ViT-B/32; OCR: the default reader. Every run is end to end from opening the "
        "library: the local run loads the encoders in the driver, the cluster run starts the cluster and "
        "each worker loads its own (the driver loads none). Steady state = the second half of the files.",
        "",
        "| executor | images | seconds | first batch written s | images/s end to end | images/s steady |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Mean images/s end to end: local **{rate['local']}**, cluster **{rate['cluster']}**; "
        f"cluster/local **{ratio}** (target >= 0.85: {'met' if data['met'] else 'NOT met'}). "
        f"Steady state: local {steady['local']}, cluster {steady['cluster']}, ratio **{steady_ratio}**. "
        f"Same point ids in every run: {'yes' if same_points else 'NO'}.",
    ]
    write_results("cluster", data, "\n".join(md))
    _merge_into_scale(rate)
    print("\n".join(md))


def mean_rate(runs: list[dict], key: str) -> dict[str, float]:
    """Mean of `key` per executor."""
    return {
        kind: round(statistics.mean(r[key] for r in runs if r["executor"] == kind), 3)
        for kind in ("local", "cluster")
    }


def _merge_into_scale(rate: dict) -> None:
    """scale.json keeps the distributed figures under "distributed" (DESIGN.md's keys)."""
    path = RESULTS / "scale.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["distributed"] = {"images_per_s": rate, "source": "bench/results/cluster.json"}
    path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
