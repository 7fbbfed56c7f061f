"""`adsearch doctor`: what this installation will do, and why."""

from __future__ import annotations

import argparse
import os

from engine.cli.common import Command, model_options, ocr_options, settings_of, store_options
from engine.terminal import printable


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "doctor",
        help="what this installation will do, and why",
        description="One screen: Tesseract and its languages, the OCR readers that load, each model (where "
        "it loads from, precision, runtime, vector size), the store (where, reachable, collection, "
        "images, which pipeline made them) and what is off. Never uses the network. Exit status 0 when "
        "everything the configuration asks for works, 1 otherwise.",
    )
    store_options(p)
    model_options(p)
    ocr_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from engine.admin.doctor import diagnose

    os.environ["HF_HUB_OFFLINE"] = "1"  # doctor says what works here, without the network
    report = diagnose(settings_of(args))
    print("\n".join(printable(line) for line in report.lines()))
    print("everything asked for works" if report.ok else "something asked for does not work (see fail lines)")
    return 0 if report.ok else 1


COMMAND = Command("doctor", add_parser, run)
