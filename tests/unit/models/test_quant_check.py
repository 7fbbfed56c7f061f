"""The int8 check at ONNX export: figures recorded, fp32 fallback below the thresholds, the decision
re-made from check.json without a new export, and the figures shown by doctor and the pipeline info.

The tiny random CLIP quantises visibly (its int8 vectors differ from fp32), so thresholds of 1.0 must
send both towers back to fp32 and thresholds of 0 must keep int8.
"""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
from PIL import Image

import engine.models.onnx_towers as towers
from engine.models.encoders import ImageTextEncoder, QuantThresholds, load_encoders
from engine.models.onnx_towers import OnnxTower, compare
from engine.settings import Settings

KEEP = QuantThresholds(0.0, 0.0)
IMPOSSIBLE = QuantThresholds(1.0, 1.0)
TEXTS = ["Audi A7 Sportback", "cheap burger deal", "I should buy this car because it is safe"]


def images() -> list[Image.Image]:
    return [Image.new("RGB", (640, 480), (200, 30, 30)), Image.new("RGB", (300, 500), (20, 90, 200))]


@pytest.fixture(scope="module")
def cache(tmp_path_factory, tiny_clip_dir):
    """One model cache for the module, with the tiny CLIP exported and checked once (thresholds 0)."""
    folder = tmp_path_factory.mktemp("quant-cache")
    ImageTextEncoder(str(tiny_clip_dir), "int8", onnx_cache=folder, thresholds=KEEP)
    return folder


@pytest.fixture(scope="module")
def fp32(tiny_clip_dir, cache):
    return ImageTextEncoder(str(tiny_clip_dir), "fp32", onnx_cache=cache)


def test_figures_are_recorded_in_the_cache_and_plausible(tiny_clip_dir, cache):
    clip = ImageTextEncoder(str(tiny_clip_dir), "int8", onnx_cache=cache, thresholds=KEEP)
    assert set(clip.towers) == {"clip-image", "clip-text"}
    for name, tower in clip.towers.items():
        check = tower.check
        assert check["tower"] == name and check["precision"] == "int8" == tower.precision
        assert 0 < check["cosine"] <= 1 and 0 < check["cosine_min"] <= check["cosine"]
        assert 0 <= check["agreement"] <= 1 and check["neighbours"] == 10
        assert check["probes"] == (24 if name == "clip-image" else 50)
        folder = tower.path.parent
        assert tower.path == folder / "int8.onnx" and (folder / "fp32.onnx").exists()
        stored = json.loads((folder / "check.json").read_text())
        assert stored["cosine"] == check["cosine"] and stored["agreement"] == check["agreement"]
        assert stored["thresholds"] == {"min_cosine": 0.0, "min_agreement": 0.0}
        assert stored["decision"] == "int8" and stored["seconds"] > 0


def test_impossible_thresholds_fall_back_to_the_fp32_tower(tiny_clip_dir, tmp_path, caplog):
    reference = ImageTextEncoder(str(tiny_clip_dir), "fp32", onnx_cache=tmp_path)
    with caplog.at_level(logging.WARNING, logger="engine.models.onnx_towers"):
        clip = ImageTextEncoder(str(tiny_clip_dir), "int8", onnx_cache=tmp_path, thresholds=IMPOSSIBLE)
    assert clip.precision == "fp32"
    for name, tower in clip.towers.items():
        assert tower.precision == "fp32" and tower.path.name == "fp32.onnx"
        assert tower.check["precision"] == "fp32" and tower.check["min_cosine"] == 1.0
        said = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{name}:")]
        assert len(said) == 1, said  # one line per tower
        assert "int8 ranks unlike fp32 on the probe set" in said[0] and said[0].endswith("using fp32")
        shown = figures_shown(said[0])
        assert shown, said[0]  # at least one figure said to miss its threshold
        for what, (value, sign, limit) in shown.items():
            assert sign == "<" and float(limit) == tower.check[f"min_{what}"] == 1.0
            assert value != limit, said[0]  # enough digits to tell them apart, on any processor
            assert float(value) < 1.0  # the figure as found, to the digits shown
            assert float(value) == pytest.approx(tower.check[what], abs=decimal_step(value))
        assert set(shown) == {w for w in ("cosine", "agreement") if tower.check[w] < tower.check[f"min_{w}"]}
    np.testing.assert_array_equal(clip.encode_texts(TEXTS), reference.encode_texts(TEXTS))
    np.testing.assert_array_equal(clip.encode_images(images()), reference.encode_images(images()))


def figures_shown(message: str) -> dict[str, tuple[str, str, str]]:
    """{figure: (value, sign, threshold)} as a message prints them, e.g. "cosine 0.99968 < 0.99990"."""
    return {m[0]: m[1:] for m in re.findall(r"\b(cosine|agreement) ([0-9.e-]+) (<|>=) ([0-9.e-]+)", message)}


def decimal_step(shown: str) -> float:
    """Half a unit of the last decimal printed: how far the printed figure may be from the true one."""
    return 0.5 * 10 ** -len(shown.partition(".")[2]) if "e" not in shown else 0.0


def test_figures_are_printed_with_enough_digits_to_compare():
    from engine.models.onnx_towers import compared, shortfall

    assert compared("cosine", 0.99968, 0.9999) == "cosine 0.99968 < 0.99990"
    assert compared("cosine", 0.9999996, 1.0) == "cosine 0.9999996 < 1.0000000"  # never "1.000 < 1.000"
    assert compared("agreement", 0.962, 0.9) == "agreement 0.962 >= 0.900"
    assert compared("agreement", 0.9000004, 0.9) == "agreement 0.9000004 >= 0.9000000"
    assert compared("cosine", 1.0, 1.0) == "cosine 1.00000 >= 1.00000"
    below = 1.0 - 2**-53  # the float just below 1
    value, sign, limit = compared("cosine", below, 1.0).split()[1:]
    assert sign == "<" and value != limit and float(value) == below
    check = {"cosine": 0.99968, "min_cosine": 0.9999, "agreement": 0.97, "min_agreement": 0.9}
    assert shortfall(check) == "cosine 0.99968 < 0.99990"
    assert shortfall({**check, "min_agreement": 1.0}) == "cosine 0.99968 < 0.99990, agreement 0.970 < 1.000"


def test_zero_thresholds_keep_int8_whose_vectors_differ_from_fp32(tiny_clip_dir, cache, fp32):
    clip = ImageTextEncoder(str(tiny_clip_dir), "int8", onnx_cache=cache, thresholds=KEEP)
    assert clip.precision == "int8"
    assert not np.allclose(clip.encode_texts(TEXTS), fp32.encode_texts(TEXTS), atol=1e-4)
    assert not np.allclose(clip.encode_images(images()), fp32.encode_images(images()), atol=1e-4)


def test_the_decision_is_remade_from_check_json_without_a_new_export(tiny_clip_dir, cache, monkeypatch):
    files = sorted(p for p in cache.glob("onnx/*/*") if p.suffix in (".onnx", ".json"))
    assert {p.name for p in files} == {"fp32.onnx", "int8.onnx", "check.json"}
    before = {p: p.stat().st_mtime_ns for p in files}

    def never(*args, **kwargs):
        raise AssertionError("exported, quantised or checked again although cached")

    for step in ("export", "quantise", "run_check"):
        monkeypatch.setattr(towers, step, never)
    strict = ImageTextEncoder(str(tiny_clip_dir), "int8", onnx_cache=cache, thresholds=IMPOSSIBLE)
    assert strict.precision == "fp32"
    lenient = ImageTextEncoder(str(tiny_clip_dir), "int8", onnx_cache=cache, thresholds=KEEP)
    assert lenient.precision == "int8"
    # one tower above and one below: each tower decides for itself
    image_cosine = lenient.image_tower.check["cosine"]
    text_cosine = lenient.text_tower.check["cosine"]
    between = QuantThresholds((image_cosine + text_cosine) / 2, 0.0)
    mixed = ImageTextEncoder(str(tiny_clip_dir), "int8", onnx_cache=cache, thresholds=between)
    assert {mixed.image_tower.precision, mixed.text_tower.precision} == {"int8", "fp32"}
    assert mixed.precision.startswith("image tower ") and ", text tower " in mixed.precision
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_a_new_probe_set_runs_the_check_again_without_a_new_export(
    tiny_clip_dir, cache, tmp_path, monkeypatch
):
    import shutil

    import engine.models.encoders as encoders

    cache = shutil.copytree(cache, tmp_path / "cache")

    def never(*args, **kwargs):
        raise AssertionError("exported again although cached")

    monkeypatch.setattr(towers, "export", never)
    monkeypatch.setattr(towers, "quantise", never)
    monkeypatch.setattr(encoders, "IMAGES_KEY", "another-probe-set")
    clip = ImageTextEncoder(str(tiny_clip_dir), "int8", onnx_cache=cache, thresholds=KEEP)
    stored = json.loads((clip.image_tower.path.parent / "check.json").read_text())
    assert stored["probe"] == "another-probe-set"


def test_compare_counts_neighbours_kept():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 8))
    same = compare(a, a)
    assert same["cosine"] == pytest.approx(1.0) and same["agreement"] == 1.0 and same["probes"] == 30
    noisy = compare(a, a + rng.normal(scale=0.5, size=a.shape))
    assert noisy["cosine"] < 0.99 and noisy["agreement"] < 1.0
    unrelated = compare(a, rng.normal(size=a.shape))
    assert unrelated["agreement"] < noisy["agreement"]


def test_thresholds_are_settings_validated_from_0_to_1(monkeypatch):
    monkeypatch.setenv("ADSEARCH_QUANT_MIN_COSINE", "0.9")
    assert Settings().quant_min_cosine == 0.9
    for bad in ("1.01", "-0.1", "nan"):
        monkeypatch.setenv("ADSEARCH_QUANT_MIN_AGREEMENT", bad)
        with pytest.raises(ValueError):
            Settings()


def test_encoders_and_the_pipeline_record_what_runs(settings, cache):
    from engine.ingest.pipeline import pipeline_info

    def pipeline(**overrides):
        encoders = load_encoders(settings.with_overrides(model_cache=cache, **overrides), quiet=True)
        return encoders, pipeline_info(settings.ocr_settings(), encoders)

    kept, kept_info = pipeline(clip_precision="int8", quant_min_cosine=0.0, quant_min_agreement=0.0)
    fallen, fallen_info = pipeline(clip_precision="int8", quant_min_cosine=1.0, quant_min_agreement=1.0)
    assert kept.precision["image"] == "int8" and fallen.precision["image"] == "fp32"
    assert kept_info["signature"] != fallen_info["signature"]  # re-encoded on the next ingest
    figures = fallen_info["quantisation"]["clip-image"]
    assert figures["precision"] == "fp32" and figures["min_cosine"] == 1.0
    assert 0 < figures["cosine"] <= 1 and 0 <= figures["agreement"] <= 1
    assert set(fallen_info["quantisation"]) == {"clip-image", "clip-text"}  # MiniLM runs fp32 as asked
    unchecked = load_encoders(settings.with_overrides(onnx=False, clip_precision="int8"), quiet=True)
    assert unchecked.quantisation()["clip-image"] == {"precision": "int8", "checked": False}


def test_doctor_shows_each_checked_tower(settings, cache, tmp_path):
    from engine.admin.doctor import diagnose

    base = settings.with_overrides(db=tmp_path / "db", model_cache=cache, clip_precision="int8")
    lines = diagnose(base.with_overrides(quant_min_cosine=0.0, quant_min_agreement=0.0)).lines()
    checked = [line for line in lines if " int8 " in line[:16]]
    assert len(checked) == 2, lines
    kept = next(line for line in checked if "clip-image: int8 kept (" in line)
    shown = figures_shown(kept)  # the figures against thresholds 0: both reach them
    assert set(shown) == {"cosine", "agreement"} and all(s[1] == ">=" for s in shown.values()), kept
    assert all(0 < float(s[0]) <= 1 and float(s[2]) == 0 for s in shown.values()), kept
    assert any("on 50 probes" in line for line in checked)
    strict = diagnose(base.with_overrides(quant_min_cosine=1.0)).lines()
    fallen = next(line for line in strict if "clip-text: fp32, int8 ranks unlike fp32 (" in line)
    value, sign, limit = figures_shown(fallen)["cosine"]
    assert sign == "<" and float(limit) == 1.0 and float(value) <= 1.0, fallen
    assert any(line.split()[1] == "clip" and ", fp32, " in line for line in strict)
    torch_path = diagnose(base.with_overrides(onnx=False)).lines()
    assert any("clip-image: int8 unchecked (PyTorch path)" in line for line in torch_path)
    assert not [
        line for line in diagnose(base.with_overrides(clip_precision="fp32")).lines() if " int8 " in line[:16]
    ]


def test_the_check_runs_on_the_onnx_tower_only(tiny_clip_dir, cache):
    clip = ImageTextEncoder(str(tiny_clip_dir), "int8", onnx_cache=cache, thresholds=KEEP)
    assert all(isinstance(t, OnnxTower) for t in clip.towers.values())
    torch_clip = ImageTextEncoder(str(tiny_clip_dir), "int8", thresholds=IMPOSSIBLE)
    assert torch_clip.precision == "int8" and all(t.check is None for t in torch_clip.towers.values())
