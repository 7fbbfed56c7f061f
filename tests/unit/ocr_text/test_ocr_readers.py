"""OCR readers behind one interface: PP-OCR on real models, merging two readers, a reader failing,
a reader that cannot load (one warning line, Tesseract alone), and the settings that pick readers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from ocr_text import OcrSettings, OcrWord, combine, load_reader, read_each, read_text, words_to_text
from ocr_text.merge import merge_words, overlap
from ocr_text.readers import min_confidence, ocr_signature, usable_readers

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
BOTH = OcrSettings(readers=("tesseract", "ppocr"))


def w(text, conf, left, top, width=60, height=30, reader="tesseract"):
    return OcrWord(text, conf, left, top, width, height, reader=reader)


def ad_image(lines: list[tuple[str, int, int, int]], size=(900, 500)) -> Image.Image:
    """White image with black text: (text, x, y, font size) per line."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for text, x, y, px in lines:
        draw.text((x, y), text, font=ImageFont.truetype(FONT, px), fill="black")
    return image


# ---------------------------------------------------------------------------- merging


def test_overlapping_words_from_two_readers_keep_the_more_confident_reading():
    tesseract = [w("BURGFR", 55, 10, 10, 100), w("deal", 90, 130, 10)]
    ppocr = [w("BURGER", 97, 12, 12, 96, reader="ppocr"), w("dea1", 70, 131, 9, reader="ppocr")]
    merged = merge_words([tesseract, ppocr])
    assert [(x.text, x.reader) for x in merged] == [("BURGER", "ppocr"), ("deal", "tesseract")]


def test_disjoint_words_from_both_readers_are_all_kept_in_reading_order():
    tesseract = [w("small", 90, 10, 300), w("print", 90, 80, 302)]
    ppocr = [w("BIG", 99, 200, 20, 200, 80, reader="ppocr"), w("SALE", 99, 420, 25, 200, 80, reader="ppocr")]
    merged = merge_words([tesseract, ppocr])
    assert words_to_text(merged).splitlines() == ["BIG SALE", "small print"]
    assert {x.reader for x in merged} == {"tesseract", "ppocr"}


def test_a_long_word_covering_two_short_ones_replaces_them_only_when_more_confident():
    pair = [w("Book", 96, 100, 10, 60), w("a", 96, 165, 10, 14)]
    glued = [w("Booka", 99, 100, 10, 80, reader="ppocr")]
    assert [x.text for x in merge_words([pair, glued])] == ["Booka"]
    weaker = [w("Booka", 80, 100, 10, 80, reader="ppocr")]
    assert [x.text for x in merge_words([pair, weaker])] == ["Book", "a"]


def test_one_reader_empty_gives_the_other_readers_words_unchanged_in_text():
    tesseract = [w("FRESH", 91, 10, 10), w("coffee", 88, 80, 10)]
    result = combine({"tesseract": tesseract, "ppocr": []}, BOTH)
    assert result.text == "FRESH coffee"
    assert result.words_by_reader() == {"tesseract": 2, "ppocr": 0}


def test_each_reader_is_cleaned_with_its_own_confidence_cut():
    settings = OcrSettings(readers=("tesseract", "ppocr"), min_confidence=60, ppocr_min_confidence=90)
    readings = {"tesseract": [w("alpha", 70, 0, 0)], "ppocr": [w("beta", 85, 0, 100, reader="ppocr")]}
    result = combine(readings, settings)
    assert [x.text for x in result.words] == ["alpha"]  # beta is under PP-OCR's cut of 90
    assert "beta" in result.raw_text  # but still in the raw text


def test_overlap_is_measured_on_the_smaller_box():
    assert overlap(w("a", 1, 0, 0, 100, 100), w("b", 1, 10, 10, 10, 10)) == 1.0
    assert overlap(w("a", 1, 0, 0, 10, 10), w("b", 1, 20, 0, 10, 10)) == 0.0


# ---------------------------------------------------------------------------- PP-OCR, the real models


@pytest.fixture(scope="module")
def ppocr():
    return load_reader("ppocr", BOTH)


def test_ppocr_reads_words_with_boxes_in_original_pixels(ppocr):
    image = ad_image([("SUMMER SALE", 60, 40, 90), ("Two pizzas for $15", 60, 300, 40)])
    words = ppocr.read(image)
    texts = [x.text for x in words]
    assert {"SUMMER", "SALE", "Two", "pizzas", "for"} <= set(texts)
    assert all(x.reader == "ppocr" and 0 <= x.confidence <= 100 for x in words)
    summer, sale = words[texts.index("SUMMER")], words[texts.index("SALE")]
    assert summer.right <= sale.left + 10  # split at the space: two boxes side by side
    assert 20 <= summer.top <= 70 and 60 <= summer.height <= 130  # the big line, in original pixels
    # the same image at half size gives boxes at half the coordinates (mapped back, not resized space)
    half = ppocr.read(image.resize((450, 250)))
    small = next(x for x in half if x.text == "SUMMER")
    assert abs(small.left * 2 - summer.left) <= 12 and abs(small.top * 2 - summer.top) <= 12


def test_ppocr_reads_light_text_on_dark_and_rotated_lines(ppocr):
    image = Image.new("RGB", (900, 600), (20, 30, 60))
    layer = Image.new("RGBA", (800, 140), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((10, 20), "NIGHT FLIGHTS", font=ImageFont.truetype(FONT, 80), fill="white")
    image.paste(layer.rotate(12, expand=True), (40, 220), layer.rotate(12, expand=True))
    words = {x.text.upper().strip(".") for x in ppocr.read(image)}
    assert {"NIGHT", "FLIGHTS"} <= words


def test_ppocr_runs_one_thread_per_process(ppocr):
    for session in (ppocr.det, ppocr.rec):
        assert session.get_session_options().intra_op_num_threads == 1


def test_both_readers_together_find_what_either_alone_finds(ppocr):
    lines = [("MEGA DEAL", 40, 30, 120), ("limited offer while stocks last", 40, 440, 14)]
    image = ad_image(lines, (1000, 480))
    readings, errors = read_each(image, BOTH)
    merged = {x.text.lower() for x in combine(readings, BOTH).words}
    assert not errors
    for name, words in readings.items():
        kept = {x.text.lower() for x in words if x.confidence >= min_confidence(BOTH, name)}
        found = kept & {"mega", "deal", "limited", "offer", "stocks", "last"}
        assert found <= merged, name


# ---------------------------------------------------------------------------- failures and fallbacks


class _Broken:
    name = "ppocr"

    def read(self, image):
        raise RuntimeError("model exploded")


def test_a_reader_failing_on_an_image_keeps_the_other_readers_words(monkeypatch):
    import ocr_text.pipeline as pipeline

    real = pipeline.load_reader
    monkeypatch.setattr(pipeline, "load_reader", lambda n, s: _Broken() if n == "ppocr" else real(n, s))
    result = read_text(ad_image([("HELLO WORLD", 40, 40, 70)]), BOTH)
    assert result.text == "HELLO WORLD"
    assert result.errors == {"ppocr": "RuntimeError: model exploded"}
    assert result.readers == ("tesseract",)


def test_every_reader_failing_is_an_error(monkeypatch):
    import ocr_text.pipeline as pipeline

    monkeypatch.setattr(pipeline, "load_reader", lambda n, s: _Broken())
    with pytest.raises(RuntimeError, match="every OCR reader failed"):
        read_text(ad_image([("HELLO", 40, 40, 70)]), BOTH)


def test_unloadable_ppocr_models_leave_tesseract_alone(tmp_path):
    for readers in [("tesseract", "ppocr"), ("ppocr",)]:  # with Tesseract, or Tesseract as the fallback
        settings = OcrSettings(readers=readers, ppocr_models=str(tmp_path))
        usable, missing = usable_readers(settings)
        assert usable.readers == ("tesseract",) and "det.onnx" in missing["ppocr"]
        assert ocr_signature(usable) != ocr_signature(settings)


def test_the_fallback_is_one_clear_line_and_ocr_goes_on(tmp_path):
    image = tmp_path / "ad.png"
    ad_image([("HELLO WORLD", 40, 40, 70)]).save(image)
    env = {"ADSEARCH_OCR_PPOCR_MODELS": str(tmp_path / "no-models"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-m", "engine.cli", "ocr", str(image)],
        capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[3], timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "ppocr unavailable" in warnings[0] and "tesseract alone" in warnings[0]
    assert "HELLO WORLD" in run.stdout and "=== ppocr" not in run.stdout


def test_ocr_command_shows_each_reader_then_the_merge(tmp_path):
    image = tmp_path / "ad.png"
    ad_image([("HELLO WORLD", 40, 40, 70)]).save(image)
    cli = [sys.executable, "-m", "engine.cli", "ocr", str(image)]
    root = Path(__file__).resolve().parents[3]
    both = [*cli, "--readers", "tesseract,ppocr"]
    out = subprocess.run(both, capture_output=True, text=True, cwd=root, timeout=120).stdout
    assert out.index("=== tesseract") < out.index("=== ppocr") < out.index("=== merged")
    one = subprocess.run([*cli, "--readers", "ppocr"], capture_output=True, text=True, cwd=root, timeout=120)
    assert "=== tesseract" not in one.stdout and "=== ppocr" in one.stdout
    bad = subprocess.run([*cli, "--readers", "easyocr"], capture_output=True, text=True, cwd=root, timeout=99)
    assert bad.returncode == 2 and "unknown OCR reader(s) easyocr" in bad.stderr


def test_readers_setting_from_the_environment(monkeypatch):
    from pydantic import ValidationError

    from engine.settings import Settings

    monkeypatch.setenv("ADSEARCH_OCR_READERS", "ppocr, tesseract,ppocr")
    assert Settings().ocr_settings().readers == ("ppocr", "tesseract")
    monkeypatch.setenv("ADSEARCH_OCR_READERS", " ,")
    with pytest.raises(ValidationError, match="at least one OCR reader"):
        Settings()
