"""OCR accuracy: per reader combination and per preprocessing step, on synthetic ads (true text known)
and on real ads.

Readers (issue #11): every row of bench/readers.py's grid (Tesseract one pass at 1200 px, two passes,
PP-OCR, and the combinations) on the synthetic sample, and each reader's word recall per kind of
hard case (dataset/hard_ads.py: photographic and gradient backgrounds, light-on-dark, outlined,
rotated, decorative and condensed fonts, small print, logo words).
Preprocessing steps (Tesseract alone): each row adds one step to the one before.
Synthetic ads: CER = Levenshtein distance / length of the true text (case-insensitive, whitespace
folded), with the OCR words put in reading order (lines by vertical position, words left to right);
word recall = share of the true words found anywhere in the OCR output.
Real ads (a fixed random sample of ads377, no true text): the number of distinct English words read
(words of 3+ letters in the MiniLM vocabulary) and the ads where none was read.

    .venv/bin/python -m bench.ocr_accuracy [--seeds 7 8] [--per-kind 6] [--no-steps]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from PIL import Image
from rapidfuzz.distance import Levenshtein

from bench.common import ADS377, WORK, write_results
from bench.readers import default_row, grid_rows, read_files, row_result, row_settings
from dataset.hard_ads import KINDS, generate_hard
from dataset.synthetic import generate
from ocr_text import OcrSettings, clean_words, read_text
from ocr_text.preprocess import DEFAULT_SCALES, prepare_for_ocr, rescale, to_greyscale
from ocr_text.readers.ppocr import DEFAULT_MODELS
from ocr_text.readers.tesseract import parse_tesseract_data, run_tesseract

_WORD = re.compile(r"[a-z0-9$]+")


def reading_order(words) -> str:
    """Words sorted into lines by vertical centre, then left to right."""
    lines: list[list] = []
    for w in sorted(words, key=lambda w: w.top + w.height / 2):
        centre = w.top + w.height / 2
        if lines and abs(centre - lines[-1][0]) < 0.6 * w.height:
            lines[-1][1].append(w)
        else:
            lines.append([centre, [w]])
    return "\n".join(" ".join(x.text for x in sorted(ws, key=lambda x: x.left)) for _, ws in lines)


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def single_pass(prepare):
    def run(image: Image.Image, settings: OcrSettings):
        prepared, scale = prepare(image)
        words = parse_tesseract_data(run_tesseract(prepared, settings), scale)
        return clean_words(words, settings.min_confidence)

    return run


STEPS = {
    "raw image (Tesseract only)": single_pass(lambda im: (im, 1.0)),
    "+ greyscale": single_pass(lambda im: (to_greyscale(im), 1.0)),
    "+ resize short side to 1200 px": single_pass(lambda im: rescale(to_greyscale(im), 1200)),
    "+ contrast stretch (the old one-pass pipeline)": single_pass(
        lambda im: prepare_for_ocr(to_greyscale(im), 1200)
    ),
    f"passes at short sides {' + '.join(map(str, DEFAULT_SCALES))} px, merged (Tesseract reader)": lambda image, settings: (
        read_text(image, settings).words
    ),
}
TESSERACT = OcrSettings(readers=("tesseract",))


def real_ads(sample: int, settings: OcrSettings) -> dict[str, dict]:
    """Distinct dictionary words read per step on a fixed sample of ads377."""
    import random

    from engine.models.encoders import resolve_text_model
    from engine.settings import DEFAULT_TEXT_MODEL

    vocab_file = Path(resolve_text_model(DEFAULT_TEXT_MODEL)) / "vocab.txt"
    vocab = {w for w in vocab_file.read_text().split() if w.isalpha() and len(w) >= 3}
    files = sorted((ADS377 / "images").glob("*/*.jpg"))
    files = random.Random(1).sample(files, min(sample, len(files)))
    rows = {}
    for step, run in STEPS.items():
        start = time.perf_counter()
        found = [
            {w.text.lower().strip(".,!?:;'\"") for w in run(Image.open(f).convert("RGB"), settings)} & vocab
            for f in files
        ]
        rows[step] = {
            "dictionary_words": sum(map(len, found)),
            "ads_without_words": sum(1 for f in found if not f),
            "seconds_per_image": round((time.perf_counter() - start) / len(files), 3),
        }
        print("real ads:", step, rows[step], flush=True)
    return rows


def score(words, truth: str) -> dict[str, int]:
    """Edit distance, true length, true words found and true words, for one image."""
    text, truth = normalise(reading_order(words)), normalise(truth)
    seen = set(_WORD.findall(text))
    truth_words = _WORD.findall(truth)
    return {
        "errors": Levenshtein.distance(text, truth),
        "chars": len(truth),
        "found": sum(w in seen for w in truth_words),
        "words": len(truth_words),
        "empty": int(not text),
    }


def summarise(scores: list[dict[str, int]]) -> dict[str, float]:
    total = {k: sum(s[k] for s in scores) for k in scores[0]}
    return {
        "cer": round(total["errors"] / max(1, total["chars"]), 4),
        "word_recall": round(total["found"] / max(1, total["words"]), 4),
        "images_without_text": total["empty"],
    }


def reader_rows(files: list[Path], truths: list[str], workers: int) -> dict[str, list]:
    """Each grid row's per-image scores and OCR CPU seconds, every reading done once."""
    rows = grid_rows()
    configs = sorted({c for _, row, _ in rows for c in row})
    readings = {c: read_files(c, {}, files, workers) for c in configs}
    out = {}
    for label, row, how in rows:
        ocr = row_settings(row, {}).ocr_settings()
        scores = []
        for i, truth in enumerate(truths):
            result = row_result({c: readings[c]["words"][i] for c in row}, row, how, ocr)
            scores.append(score(result.words, truth))
        cpu = sum(sum(readings[c]["cpu_s"]) for c in row) / len(files)
        out[label] = [scores, cpu]
        print(label, summarise(scores), f"{cpu:.3f} CPU s/image", flush=True)
    return out


def hard_case_table(rows: dict[str, list], kinds: list[str]) -> dict[str, dict[str, float]]:
    """Word recall per kind of hard case for every row."""
    table: dict[str, dict[str, float]] = {}
    for label, (scores, _) in rows.items():
        for kind in KINDS:
            mine = [s for s, k in zip(scores, kinds, strict=True) if k == kind]
            table.setdefault(kind, {})[label] = summarise(mine)["word_recall"]
    return table


TESS, PP = "tesseract 2 passes (700+1600)", f"ppocr {DEFAULT_MODELS}"
BOTH = f"tesseract 2 passes + ppocr {DEFAULT_MODELS}"


def per_kind_table(per_kind: dict[str, dict[str, float]], default: str) -> list[str]:
    """Word recall per kind of hard ad: each reader alone, both merged, and the default readers."""
    md = [
        "",
        "## Word recall per kind of hard case",
        "",
        f"Default readers: {default}. Merged: both readers' words merged as ingest does.",
        "",
        f"| kind | Tesseract (2 passes) | PP-OCR {DEFAULT_MODELS} | merged (both) | default | "
        "merged >= better reader |",
        "|---|---|---|---|---|---|",
    ]
    for kind, row in per_kind.items():
        best = max(row[TESS], row[PP])
        md.append(
            f"| {kind} | {row[TESS]:.3f} | {row[PP]:.3f} | {row[BOTH]:.3f} | {row[default]:.3f} | "
            f"{'yes' if row[BOTH] >= best else 'NO'} |"
        )
    return md


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--per-kind", type=int, default=6, help="hard synthetic ads per kind")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--real-sample", type=int, default=40, help="ads377 images to read (0: skip)")
    parser.add_argument("--no-steps", action="store_true", help="skip the preprocessing-step table")
    args = parser.parse_args(argv)
    ads = []
    for seed in args.seeds:
        folder = WORK / f"synthetic-{seed}"
        generate(folder, seed=seed)
        ads += [(folder / a["file"], a) for a in json.loads((folder / "truth.json").read_text()) if a["text"]]
    hard_dir = WORK / f"hard-{args.per_kind}"
    hard = generate_hard(hard_dir, args.per_kind)

    grid = reader_rows([p for p, _ in ads], [a["text"] for _, a in ads], args.workers)
    hard_rows = reader_rows([hard_dir / h.file for h in hard], [h.text for h in hard], args.workers)
    per_kind = hard_case_table(hard_rows, [h.kind for h in hard])
    merged = default_row()
    md = [
        f"# OCR accuracy: readers on synthetic ads ({len(ads)} sample ads, seeds {args.seeds}; "
        f"{len(hard)} hard ads, {args.per_kind} per kind)",
        "",
        "Rows are bench/readers.py's grid: each image read once per reading, then cleaned and merged",
        "exactly as ingest does. CER: edit distance / true length (case folded, words in reading order);",
        "word recall: share of the true words found. OCR CPU: per image, Tesseract's own process included.",
        "",
        "| readers | sample CER | sample word recall | hard CER | hard word recall | hard ads with no text "
        "| OCR CPU s / image (sample) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, (scores, cpu) in grid.items():
        a, b = summarise(scores), summarise(hard_rows[label][0])
        md.append(
            f"| {label} | {a['cer']:.3f} | {a['word_recall']:.3f} | {b['cer']:.3f} | "
            f"{b['word_recall']:.3f} | {b['images_without_text']} | {cpu:.2f} |"
        )
    md += per_kind_table(per_kind, merged)
    data = {
        "ads": len(ads), "hard_ads": len(hard), "seeds": args.seeds,
        "readers": {label: {**summarise(s), "ocr_cpu_s": round(cpu, 3)} for label, (s, cpu) in grid.items()},
        "hard": {label: summarise(s) for label, (s, _) in hard_rows.items()},
        "hard_per_kind": per_kind,
    }  # fmt: skip
    if not args.no_steps:
        md += steps_tables(ads, args.real_sample, data)
    write_results("ocr_accuracy", data, "\n".join(md))
    print("\n".join(md))


def steps_tables(ads, real_sample: int, data: dict) -> list[str]:
    """The preprocessing-step tables (Tesseract alone), on the sample and on real ads."""
    rows = {}
    for step, run in STEPS.items():
        start = time.perf_counter()
        scores = [score(run(Image.open(path).convert("RGB"), TESSERACT), ad["text"]) for path, ad in ads]
        rows[step] = summarise(scores) | {
            "seconds_per_image": round((time.perf_counter() - start) / len(ads), 3)
        }
        print(step, rows[step], flush=True)
    md = [
        "",
        "## Preprocessing steps (Tesseract alone, sample ads)",
        "",
        "Each row adds one step to the row above. Lower CER is better.",
        "",
        "| step | CER | word recall | ads with no text read | s / image |",
        "|---|---|---|---|---|",
    ]
    for step, r in rows.items():
        cells = [
            f"{r['cer']:.3f}",
            f"{r['word_recall']:.3f}",
            r["images_without_text"],
            r["seconds_per_image"],
        ]
        md.append(f"| {step} | " + " | ".join(map(str, cells)) + " |")
    real = real_ads(real_sample, TESSERACT) if real_sample and ADS377.exists() else {}
    data |= {"steps": rows, "real_ads": real}
    if real:
        md += [
            "",
            f"## Real ads: a fixed random sample of {real_sample} ads377 images (true text unknown)",
            "",
            "| step | distinct English words read | ads with none | s / image |",
            "|---|---|---|---|",
        ]
        for step, r in real.items():
            md.append(
                f"| {step} | {r['dictionary_words']} | {r['ads_without_words']} | {r['seconds_per_image']} |"
            )
    return md


if __name__ == "__main__":
    main()
