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
from ocr_text.preprocess import prepare_for_ocr, rescale, stretch_contrast, to_greyscale
from ocr_text.readers import ocr_signature
from ocr_text.readers.tesseract import parse_tesseract_data

TESSERACT = OcrSettings(readers=("tesseract",))


def tesseract(**knobs) -> OcrSettings:
    """Settings for Tesseract alone: these tests are about that reader."""
    return OcrSettings(readers=("tesseract",), **knobs)


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


def test_rescale_sets_the_short_side_up_to_3x_and_down():
    small, scale = rescale(Image.new("L", (400, 300)), 1200)
    assert scale == 3.0 and small.size == (1200, 900)  # capped at 3x, not 4x
    big, scale = rescale(Image.new("L", (2000, 1500)), 750)
    assert scale == 0.5 and big.size == (1000, 750)  # large headlines are read better smaller
    near = Image.new("L", (1010, 700))
    same, scale = rescale(near, 707)
    assert scale == 1.0 and same is near  # within 2%: no resampling


def test_stretch_contrast_widens_a_narrow_range():
    image = Image.new("L", (10, 10), 120)
    image.paste(140, (0, 0, 5, 10))
    low, high = stretch_contrast(image).getextrema()
    assert low < 20 and high > 235


def test_prepare_returns_scale_matching_the_resize():
    prepared, scale = prepare_for_ocr(Image.new("L", (300, 200), 255), 600)
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
    result = read_text(Image.open(sample_dir / ad["file"]).convert("RGB"), TESSERACT)
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
    assert read_text(image, tesseract(psm=7)).text == "HELLO WORLD"  # psm 7: a single text line


def test_upscale_keeps_long_banners_within_a_pixel_budget():
    from ocr_text.preprocess import MAX_UPSCALED_PIXELS

    banner, scale = rescale(Image.new("L", (30000, 200)), 1200)  # 6 MP, 54 MP at 3x
    assert 1.0 <= scale < 3.0 and banner.width * banner.height <= MAX_UPSCALED_PIXELS * 1.01


def test_images_longer_than_tesseract_accepts_are_shrunk_to_fit():
    from ocr_text.preprocess import TESSERACT_MAX_SIDE

    for size in [(20000, 100), (40000, 1300)]:
        fitted, scale = rescale(Image.new("L", size), 1200)
        assert max(fitted.size) <= TESSERACT_MAX_SIDE and scale == max(fitted.size) / max(size)


def test_otsu_splits_a_two_tone_image_and_binarise_can_invert():
    from ocr_text.preprocess import binarise, otsu_threshold

    grey = Image.new("L", (100, 100), 200)
    grey.paste(60, (0, 0, 30, 100))  # a dark band: levels 60 and 200
    assert 60 <= otsu_threshold(grey) < 200
    assert binarise(grey).getextrema() == (0, 255) and binarise(grey).getpixel((5, 5)) == 0
    assert binarise(grey, invert=True).getpixel((5, 5)) == 255  # dark band becomes the light side


def test_merge_keeps_the_most_confident_reading_and_every_word():
    from ocr_text.merge import merge_words

    first = [
        OcrWord("BURGFR", 55.0, 10, 10, 100, 30, 1, 1, 1),
        OcrWord("deal", 90.0, 130, 10, 60, 30, 1, 1, 1),
    ]
    second = [
        OcrWord("BURGER", 92.0, 12, 11, 98, 29, 1, 1, 1),
        OcrWord("$3.99", 80.0, 10, 60, 80, 30, 1, 1, 1),
    ]
    merged = merge_words([first, second])
    assert sorted(w.text for w in merged) == ["$3.99", "BURGER", "deal"]
    assert words_to_text(merged).splitlines() == ["BURGER deal", "$3.99"]  # lines rebuilt from the boxes


def test_retry_passes_run_only_below_the_word_threshold():
    image = Image.new("RGB", (900, 300), (20, 20, 60))  # light text on a dark panel, dark text on white
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 50)
    draw.text((20, 30), "NIGHT SALE", font=font, fill=(235, 235, 235))
    draw.rectangle((0, 160, 900, 300), fill="white")
    draw.text((20, 190), "Open late", font=font, fill="black")
    once = read_text(image, TESSERACT)
    retried = read_text(image, tesseract(retry_below_words=50))
    assert read_text(image, tesseract(retry_below_words=1)).words == once.words  # enough words: no retry
    for word in once.words:  # merging never loses a region the first pass read
        assert any(
            w.left <= word.left + word.width
            and word.left <= w.left + w.width
            and w.top <= word.top + word.height
            and word.top <= w.top + w.height
            for w in retried.words
        )
    assert {"NIGHT", "SALE"} <= set(retried.text.split())
    assert ocr_signature(tesseract(retry_below_words=5)) != ocr_signature(TESSERACT)


def test_each_scale_is_a_pass_and_their_words_are_merged():
    """A huge headline over small print: no single scale reads both, the merged passes do."""
    image = Image.new("RGB", (1000, 1400), "white")
    draw = ImageDraw.Draw(image)
    font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
    draw.text((40, 40), "MEGA", font=ImageFont.truetype(font, 330), fill="black")
    draw.text((40, 1300), "limited offer while stocks last", font=ImageFont.truetype(font, 13), fill="black")
    words = {
        scales: {w.text.lower() for w in read_text(image, tesseract(scales=scales)).words}
        for scales in [(700,), (2000,), (700, 2000)]
    }
    assert "mega" in words[(700,)] and "stocks" not in words[(700,)]  # small print lost when small
    assert "stocks" in words[(2000,)] and "mega" not in words[(2000,)]  # headline misread when large
    assert {"mega", "limited", "offer", "stocks"} <= words[(700, 2000)]
    assert ocr_signature(tesseract(scales=(700,))) != ocr_signature(tesseract(scales=(700, 2000)))
    pp_only = OcrSettings(readers=("ppocr",))
    assert ocr_signature(OcrSettings(readers=("ppocr",), scales=(700,))) == ocr_signature(
        pp_only
    )  # unused knob
