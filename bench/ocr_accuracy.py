"""OCR accuracy per preprocessing step: on synthetic ads (true text known) and on real ads.

Each row adds one preprocessing step to the one before, so the table shows what each step buys.
Synthetic ads: CER = Levenshtein distance / length of the true text (case-insensitive, whitespace
folded), with the OCR words put in reading order (lines by vertical position, words left to right);
word recall = share of the true words found anywhere in the OCR output.
Real ads (a fixed random sample of ads377, no true text): the number of distinct English words read
(words of 3+ letters in the MiniLM vocabulary) and the ads where none was read.

    .venv/bin/python -m bench.ocr_accuracy [--seeds 7 8]
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
from dataset.synthetic import generate
from ocr_text import OcrSettings, clean_words, read_text
from ocr_text.preprocess import DEFAULT_SCALES, prepare_for_ocr, rescale, to_greyscale
from ocr_text.tesseract import parse_tesseract_data, run_tesseract

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
    f"passes at short sides {' + '.join(map(str, DEFAULT_SCALES))} px, merged (ocr_text.read_text)": lambda image, settings: (
        read_text(image, settings).words
    ),
}


def real_ads(sample: int, settings: OcrSettings) -> dict[str, dict]:
    """Distinct dictionary words read per step on a fixed sample of ads377."""
    import random

    from engine.config import DEFAULT_TEXT_MODEL
    from engine.encoders import resolve_text_model

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--real-sample", type=int, default=40, help="ads377 images to read (0: skip)")
    args = parser.parse_args(argv)
    ads = []
    for seed in args.seeds:
        folder = WORK / f"synthetic-{seed}"
        generate(folder, seed=seed)
        ads += [(folder / a["file"], a) for a in json.loads((folder / "truth.json").read_text()) if a["text"]]
    settings = OcrSettings()
    rows = {}
    for step, run in STEPS.items():
        errors = chars = found = total_words = 0
        empty = 0
        start = time.perf_counter()
        for path, ad in ads:
            words = run(Image.open(path).convert("RGB"), settings)
            text = normalise(reading_order(words))
            truth = normalise(ad["text"])
            errors += Levenshtein.distance(text, truth)
            chars += len(truth)
            truth_words = _WORD.findall(truth)
            seen = set(_WORD.findall(text))
            found += sum(w in seen for w in truth_words)
            total_words += len(truth_words)
            empty += not text
        rows[step] = {
            "cer": round(errors / chars, 4),
            "word_recall": round(found / total_words, 4),
            "images_without_text": empty,
            "seconds_per_image": round((time.perf_counter() - start) / len(ads), 3),
        }
        print(step, rows[step], flush=True)
    md = [
        f"# OCR accuracy on synthetic ads ({len(ads)} ads with known text, seeds {args.seeds})",
        "",
        "Each row adds one step to the row above. Lower CER is better. Synthetic ads include rotated",
        "headlines and low-contrast text; see dataset/README.md.",
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
    real = real_ads(args.real_sample, settings) if args.real_sample and ADS377.exists() else {}
    if real:
        md += [
            "",
            f"## Real ads: a fixed random sample of {args.real_sample} ads377 images (true text unknown)",
            "",
            "| step | distinct English words read | ads with none | s / image |",
            "|---|---|---|---|",
        ]
        for step, r in real.items():
            md.append(
                f"| {step} | {r['dictionary_words']} | {r['ads_without_words']} | {r['seconds_per_image']} |"
            )
        md += [
            "",
            "The synthetic ads are clean renders at 600-900 px with large type: Tesseract reads them well",
            "as they are, and greyscale costs a little where coloured text has the luminance of its",
            "background. Real ads are scans and photos with small print: there resizing to a larger scale",
            "finds more text, and a second pass at a small scale reads the big stylised headlines the large",
            "one misses. Merged, the two passes read the most on real ads and win back part of what greyscale",
            "cost on the synthetic ones, at twice the OCR time. Retrieval gains: quality.md, docs/decisions.md.",
        ]
    data = {"ads": len(ads), "seeds": args.seeds, "steps": rows, "real_ads": real}
    write_results("ocr_accuracy", data, "\n".join(md))


if __name__ == "__main__":
    main()
