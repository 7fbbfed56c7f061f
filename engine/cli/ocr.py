"""`adsearch ocr`: what each OCR reader reads in one image, and the merged result ingest stores."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from engine.cli.common import Command, ocr_options, settings_of
from engine.terminal import printable, printable_lines


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "ocr",
        help="show what OCR reads in one image",
        description="Run the OCR step on one image: each reader's words (text, confidence, box), then "
        "the merged result that ingest stores (overlapping words: the more confident reading wins).",
    )
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    ocr_options(p, "--readers")
    return p


def run(args: argparse.Namespace) -> int:
    from engine.ingest.ocr import usable_ocr
    from engine.media.images import decode_image
    from ocr_text import combine, min_confidence, read_each

    settings = settings_of(args)
    decoded = decode_image(args.file.read_bytes(), settings.max_image_pixels)
    ocr = usable_ocr(settings.ocr_settings())
    readings, errors = read_each(decoded.image, ocr)
    result = combine(readings, ocr, errors)
    if args.json:
        out = {"text": result.text, "raw_text": result.raw_text, "confidence": result.confidence}
        by_reader = {name: [asdict(w) for w in words] for name, words in readings.items()}
        out |= {"readers": by_reader, "errors": errors, "words": result.words_as_dicts()}
        print(json.dumps(out, indent=2))
        return 0
    print(f"{printable(args.file)} ({decoded.width}x{decoded.height} {decoded.format})")
    for name, words in readings.items():
        cut = min_confidence(ocr, name)
        print(f"=== {name}: {len(words)} words read (kept at confidence >= {cut:g}) " + "=" * 16)
        _print_words(words)
    for name, reason in errors.items():
        print(f"=== {name}: failed: {printable(reason)}")
    print(f"=== merged ({' + '.join(result.readers)}) " + "=" * 30)
    print(printable_lines(result.text) if result.text else "(no text found)")
    counts = ", ".join(f"{n} {c}" for n, c in result.words_by_reader().items())
    print(f"--- {len(result.words)} words kept ({counts}), mean confidence {result.confidence:.1f}")
    _print_words(result.words, reader=len(result.readers) > 1)
    return 0


def _print_words(words, reader: bool = False) -> None:
    for w in words:
        who = f"{w.reader:<10}" if reader else ""
        text = printable(w.text)
        print(f"{w.confidence:6.1f}  {who}{text:<24} at x={w.left} y={w.top} w={w.width} h={w.height}")


COMMAND = Command("ocr", add_parser, run)
