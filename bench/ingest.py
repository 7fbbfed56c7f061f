"""Ingest throughput on the 377 real ads of ../shared/data/ads377/images: the full pipeline.

CLIP is the full ViT-B/32 architecture with random weights (speed does not depend on the weights;
real ones cannot be downloaded here). Reports wall time, images/s and where the time goes.
The collection it builds (bench/.work/ads377-db) is reused by bench/query.py.

    .venv/bin/python -m bench.ingest [--images DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import shutil

from bench.common import ADS377, WORK, write_results
from engine.config import Settings
from engine.encoders import load_encoders
from engine.images import discover
from engine.ingest import ingest
from engine.store import EdgeStore

DB = WORK / "ads377-db"


def random_vit_b_32():
    """Full-size random CLIP, saved once under bench/.work."""
    from engine.random_clip import save_random_clip

    folder = WORK / "clip-vit-b-32-random"
    if not (folder / "config.json").exists():
        save_random_clip(folder, "vit-b-32")
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=str(ADS377 / "images"))
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    shutil.rmtree(DB, ignore_errors=True)
    settings = Settings(db=DB, clip_model=str(random_vit_b_32()), workers=args.workers)
    encoders = load_encoders(settings)
    files = list(discover([args.images]))
    with EdgeStore(DB, settings.collection) as store:
        report = ingest([args.images], settings, encoders, store, progress=False)
        with_text = store.count("text")
    print(report.summary())
    wall = report.seconds
    data = {
        "images": len(files),
        "workers": args.workers,
        "clip": "ViT-B/32 architecture, random weights",
        "wall_s": round(wall, 1),
        "images_per_s": round(report.images_per_second, 2),
        "ingested": report.ingested,
        "failed": len(report.failed),
        "with_text": with_text,
        "no_text": report.ingested - with_text,
        "busy_s": {
            "ocr_all_workers": round(report.ocr_seconds, 1),
            "encode": round(report.encode_seconds, 1),
            "upsert": round(report.upsert_seconds, 1),
        },
        "busy_share_of_wall": {
            "ocr_per_worker": round(report.ocr_seconds / args.workers / wall, 3),
            "encode": round(report.encode_seconds / wall, 3),
            "upsert": round(report.upsert_seconds / wall, 3),
        },
    }
    share = data["busy_share_of_wall"]
    ocr_busy = f"{data['busy_s']['ocr_all_workers']} s = {share['ocr_per_worker']:.0%} of wall each"
    md = f"""# Ingest: 377 real ads (ads377), full pipeline

`adsearch ingest` on `../shared/data/ads377/images`, {args.workers} OCR workers, CLIP {data["clip"]},
all-MiniLM-L6-v2 and BM25, embedded Qdrant Edge store. One run.

| figure | value |
|---|---|
| images | {data["images"]} ({data["failed"]} failed) |
| wall time | {data["wall_s"]} s |
| throughput | {data["images_per_s"]} images/s |
| OCR busy (sum over workers) | {ocr_busy} |
| encoding busy (main process) | {data["busy_s"]["encode"]} s = {share["encode"]:.0%} of wall |
| upsert busy | {data["busy_s"]["upsert"]} s = {share["upsert"]:.0%} of wall |
| images with OCR text / without | {data["with_text"]} / {data["no_text"]} |

OCR (Tesseract, one thread per worker) is the bottleneck; encoding runs in the main process,
overlapped with OCR in the workers.
"""
    write_results("ingest", data, md)


if __name__ == "__main__":
    main()
