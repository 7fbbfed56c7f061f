"""ocr_text: preprocessing, cleaning and parsing as pure functions, and real Tesseract on synthetic ads."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from ocr_text import (
    OcrSettings,
    OcrWord,
    clean_words,
    is_garbage,
    normalise_whitespace,
    read_text,
    words_to_text,
)
from ocr_text.preprocess import prepare_for_ocr, stretch_contrast, to_greyscale, upscale_small
from ocr_text.tesseract import parse_tesseract_data


def word(text, conf=90.0, line=1):
    return OcrWord(text, conf, 0, 0, 10, 10, block=1, paragraph=1, line=line)


def test_greyscale_puts_transparent_pixels_on_white():
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    image.putpixel((0, 0), (0, 0, 0, 255))
    grey = to_greyscale(image)
    assert grey.mode == "L"
    assert grey.getpixel((1, 1)) == 255 and grey.getpixel((0, 0)) == 0


def test_greyscale_scales_16_bit_instead_of_saturating():
    image = Image.new("I;16", (2, 2), 32768)
    assert 120 <= to_greyscale(image).getpixel((0, 0)) <= 135


def test_upscale_small_images_only_and_bounded():
    small, scale = upscale_small(Image.new("L", (400, 300)), min_side=1200)
    assert scale == 3.0 and small.size == (1200, 900)  # capped at 3x, not 4x
    big = Image.new("L", (2000, 1500))
    same, scale = upscale_small(big, min_side=1200)
    assert scale == 1.0 and same is big


def test_stretch_contrast_widens_a_narrow_range():
    image = Image.new("L", (10, 10), 120)
    image.paste(140, (0, 0, 5, 10))
    low, high = stretch_contrast(image).getextrema()
    assert low < 20 and high > 235


def test_prepare_returns_scale_matching_the_resize():
    prepared, scale = prepare_for_ocr(Image.new("RGB", (300, 200), "white"), min_side=600)
    assert prepared.size == (900, 600) and scale == 3.0


def test_garbage_detection():
    for junk in ["|", "~~", "—", "lll", "iiii", "rnrnmw", ".,;", "'", "e", "%$#@!"]:
        assert is_garbage(junk), junk
    for real in ["Audi", "A7", "$3.99", "I", "a", "4", "SALE!", "BMW", "quattro®", "(2024)"]:
        assert not is_garbage(real), real


def test_clean_words_drops_low_confidence_and_garbage():
    words = [word("Voltara", 95), word("sedan", 40), word("|||", 99), word("safe", 50)]
    assert [w.text for w in clean_words(words, min_confidence=50)] == ["Voltara", "safe"]


def test_whitespace_normalised_case_kept():
    assert normalise_whitespace("  Big \t SALE  \n\n  Only\u00a0Today ") == "Big SALE\nOnly Today"


def test_words_grouped_into_lines():
    assert words_to_text([word("Fly", line=1), word("to", line=1), word("Paris", line=2)]) == "Fly to\nParis"


def test_parse_maps_boxes_back_to_original_scale_and_skips_non_words():
    data = {
        "text": ["", "Hello", " "],
        "conf": ["-1", "91.5", "80"],
        "left": [0, 30, 0], "top": [0, 60, 0], "width": [0, 90, 5], "height": [0, 24, 5],
        "block_num": [1, 1, 1], "par_num": [1, 1, 1], "line_num": [1, 1, 1],
    }  # fmt: skip
    (w,) = parse_tesseract_data(data, scale=3.0)
    assert (w.text, w.confidence, w.left, w.top, w.width, w.height) == ("Hello", 91.5, 10, 20, 30, 8)


def test_tesseract_reads_the_brand_of_a_synthetic_ad(sample_dir, truth):
    ad = next(a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"])
    result = read_text(Image.open(sample_dir / ad["file"]).convert("RGB"))
    assert ad["brand"] in result.text
    brand_words = [w for w in result.words if w.text in ad["brand"].split()]
    assert brand_words and all(w.confidence >= 50 for w in brand_words)
    image = Image.open(sample_dir / ad["file"])
    for w in result.words:  # boxes are in the original image's coordinates
        assert 0 <= w.left < image.width and 0 <= w.top < image.height


def test_blank_image_has_no_text():
    result = read_text(Image.new("RGB", (400, 300), (30, 120, 200)))
    assert result.text == "" and result.words == [] and result.confidence == 0.0


def test_psm_setting_is_honoured():
    image = Image.new("RGB", (900, 200), "white")
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 60)
    ImageDraw.Draw(image).text((20, 60), "HELLO WORLD", font=font, fill="black")
    assert read_text(image, OcrSettings(psm=7)).text == "HELLO WORLD"  # psm 7: a single text line


def test_upscale_keeps_long_banners_within_a_pixel_budget():
    from ocr_text.preprocess import MAX_UPSCALED_PIXELS

    banner, scale = upscale_small(Image.new("L", (30000, 200)), min_side=1200)  # 6 MP, 54 MP at 3x
    assert 1.0 <= scale < 3.0 and banner.width * banner.height <= MAX_UPSCALED_PIXELS * 1.01


def test_images_longer_than_tesseract_accepts_are_shrunk_to_fit():
    from ocr_text.preprocess import TESSERACT_MAX_SIDE

    for size in [(20000, 100), (40000, 1300)]:
        fitted, scale = upscale_small(Image.new("L", size))
        assert max(fitted.size) <= TESSERACT_MAX_SIDE and scale == max(fitted.size) / max(size)
