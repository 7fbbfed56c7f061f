"""Extension points (issue 22): a command added by another package through the `adsearch.commands`
entry point group, as api/ adds `serve` - here a toy package written by the test alone and made
visible to importlib.metadata the way pip installs one (a dist-info folder on sys.path)."""

from __future__ import annotations

import sys

import pytest

from engine import cli

TOY = """
from engine.cli import Command, store_options


def add_parser(subparsers):
    p = subparsers.add_parser("toy", help="say what the store is")
    p.add_argument("--shout", action="store_true")
    store_options(p)
    return p


def run(args):
    text = f"toy sees collection {args.collection or 'ads'}"
    print(text.upper() if args.shout else text)
    return 7


TOY = Command("toy", add_parser, run, after="ingest")
"""


@pytest.fixture()
def toy_package(tmp_path, monkeypatch):
    (tmp_path / "toy_command.py").write_text(TOY)
    info = tmp_path / "adsearch_toy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: adsearch-toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[adsearch.commands]\ntoy = toy_command:TOY\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cli.added_commands.cache_clear()
    yield
    cli.added_commands.cache_clear()
    sys.modules.pop("toy_command", None)


def test_a_toy_command_from_another_package_runs_with_the_common_flags(toy_package, capsys):
    assert cli.main(["toy", "--shout", "--collection", "mine"]) == 7
    assert capsys.readouterr().out.strip() == "TOY SEES COLLECTION MINE"
    commands = list(cli.build_parser()._subparsers._group_actions[0].choices)
    assert commands.index("toy") == commands.index("ingest") + 1  # listed where it asked to be
    assert "serve" in commands  # api/'s own command is still there


def test_serve_comes_from_api_through_the_entry_point():
    command = cli.added_commands()["serve"]
    assert command.run.__module__ == "api.command" and "serve" not in cli.COMMANDS
    help_text = cli.build_parser().format_help()
    assert help_text.index("search") < help_text.index("serve") < help_text.index("evaluate")


def test_a_command_registered_twice_is_refused(toy_package, tmp_path):
    info = tmp_path / "adsearch_toy-0.1.dist-info"
    (info / "entry_points.txt").write_text("[adsearch.commands]\ningest = toy_command:TOY\n")
    (tmp_path / "toy_command.py").write_text(TOY.replace('Command("toy"', 'Command("ingest"'))
    with pytest.raises(cli.UsageError, match="registered twice"):
        cli.added_commands()


# ---------------------------------------------------------------------- a toy OCR reader


class StampReader:
    """Reads one word, "TOYWORD", in the top-left corner of any image, with a set confidence."""

    name = "toy"

    def __init__(self, confidence: float):
        self.confidence = confidence

    def read(self, image):
        from ocr_text import OcrWord

        return [OcrWord("TOYWORD", self.confidence, 2, 2, 40, 12, reader="toy")]


@pytest.fixture()
def toy_reader():
    from ocr_text import ReaderKind, register
    from ocr_text.readers import unregister

    register(ReaderKind("toy", lambda s: StampReader(90.0), lambda s: "toy:v1", lambda s: 50.0))
    yield
    unregister("toy")


def test_a_toy_reader_is_validated_merged_and_signed_like_the_others(toy_reader, sample_dir, truth):
    from PIL import Image

    from engine.settings import Settings
    from ocr_text import ocr_signature, read_text

    settings = Settings(ocr_readers="tesseract,toy").ocr_settings()  # the name is known to the settings
    assert settings.readers == ("tesseract", "toy")
    ad = next(a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"])
    result = read_text(Image.open(sample_dir / ad["file"]), settings)
    assert result.readers == ("tesseract", "toy") and not result.errors, result.errors
    by_reader = result.words_by_reader()
    assert by_reader["toy"] == 1 and by_reader["tesseract"] > 1  # merged with Tesseract's words
    assert "TOYWORD" in result.text and ad["brand"].split()[0].lower() in result.text.lower()
    assert ocr_signature(settings).endswith("|toy:v1")
    assert ocr_signature(settings) != ocr_signature(Settings(ocr_readers="tesseract").ocr_settings())


def test_an_unknown_reader_is_refused_with_the_known_names():
    from pydantic import ValidationError

    from engine.settings import Settings

    with pytest.raises(ValidationError, match="unknown OCR reader.*known: tesseract, ppocr"):
        Settings(ocr_readers="tesseract,nosuch")
