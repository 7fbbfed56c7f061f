"""The hard synthetic ads generator: kinds, determinism, truth file, angles, drawn words, font fallback."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset import hard_ads
from dataset.hard_ads import KINDS, HardAd, generate_hard, main, render, size_for_cap_height


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, list[HardAd]]:
    out = tmp_path_factory.mktemp("hard")
    return out, generate_hard(out, per_kind=2, seed=11)


def test_every_kind_present_with_words(generated):
    out, ads = generated
    assert [a.kind for a in ads] == [k for k in KINDS for _ in range(2)]
    for ad in ads:
        assert ad.words and ad.words == ad.text.split(), ad.file
        assert 1 <= len(ad.text.split("\n")) <= 3, ad.file
        assert Path(ad.font).is_file() and ad.font.startswith("/usr/share/fonts/"), ad.font
        with Image.open(out / ad.file) as image:
            assert min(image.size) >= 600 and max(image.size) <= 900
    logos = [a for a in ads if a.kind == "logo_word"]
    assert all(len(a.words) == 1 for a in logos)
    assert all(len(a.text.split("\n")) >= 2 for a in ads if a.kind == "small_print")


def test_truth_json_round_trips(generated):
    out, ads = generated
    truth = json.loads((out / "truth.json").read_text())
    assert truth == [asdict(a) for a in ads]
    assert [HardAd(**d) for d in truth] == ads
    assert sorted(p.name for p in out.iterdir() if p.name != "truth.json") == sorted(a.file for a in ads)


def test_only_rotated_ads_have_an_angle(generated):
    _, ads = generated
    for ad in ads:
        if ad.kind == "rotated":
            assert 4 <= abs(ad.angle) <= 15, ad
        else:
            assert ad.angle == 0, ad


def test_same_seed_same_bytes_other_seed_differs(generated, tmp_path):
    out, ads = generated
    again = generate_hard(tmp_path / "again", per_kind=1, seed=11)  # image i does not depend on per_kind
    assert again == [a for a in ads if a.file.split("-")[-1].startswith("00")]
    for ad in again:
        assert (tmp_path / "again" / ad.file).read_bytes() == (out / ad.file).read_bytes(), ad.file
    assert main(["--out", str(tmp_path / "other"), "--per-kind", "1", "--seed", "12"]) == 0
    other = [HardAd(**d) for d in json.loads((tmp_path / "other" / "truth.json").read_text())]
    assert [a.file for a in other] == [a.file for a in again]
    assert other != again
    for ad in other:
        assert (tmp_path / "other" / ad.file).read_bytes() != (out / ad.file).read_bytes(), ad.file


def _assert_words_drawn(kind: str, index: int, seed: int) -> HardAd:
    """Every word's box differs visibly from the same image rendered without text."""
    image, ad, boxes = render(kind, index, seed)
    bare, bare_ad, _ = render(kind, index, seed, with_text=False)
    assert bare_ad == ad and len(boxes) == len(ad.words) >= 1
    diff = np.abs(np.asarray(image, np.int16) - np.asarray(bare, np.int16)).max(axis=-1)
    for word, (x0, y0, x1, y1) in zip(ad.words, boxes, strict=True):
        assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height, (ad.file, word)
        assert (diff[y0:y1, x0:x1] >= 40).sum() >= 10, f"{ad.file}: {word!r} is not visibly drawn"
    return ad


@pytest.mark.parametrize("kind", KINDS)
def test_every_word_is_drawn(kind):
    _assert_words_drawn(kind, 0, 11)


def test_small_print_cap_height_is_9_to_12_px():
    for path in {hard_ads.resolve_font(p) for p in hard_ads.KIND_FONTS["small_print"]}:
        for cap in (9, 10, 11, 12):
            top, bottom = hard_ads._load(path, size_for_cap_height(path, cap)).getbbox("H")[1::2]
            assert 9 <= bottom - top <= 12 and bottom - top >= cap, (path, cap, bottom - top)


def test_missing_font_files_fall_back_to_dejavu(monkeypatch, tmp_path):
    monkeypatch.setattr(hard_ads, "KIND_FONTS", {k: ("/usr/share/fonts/missing/Nowhere.ttf",) for k in KINDS})
    ads = generate_hard(tmp_path, per_kind=1, seed=3)
    assert {a.font for a in ads} == {hard_ads.FALLBACK_FONT}
    assert len(ads) == len(KINDS) and all((tmp_path / a.file).is_file() for a in ads)
    monkeypatch.setattr(hard_ads, "FALLBACK_FONT", "/usr/share/fonts/missing/DejaVuSans-Bold.ttf")
    for kind in ("small_print", "logo_word", "rotated"):
        assert _assert_words_drawn(kind, 0, 3).font == hard_ads.PILLOW_DEFAULT
