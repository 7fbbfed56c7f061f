"""The int8 check's probe images (engine.models.probes) are the ads its figures were measured on
(bench/results/quant_check.md): pixel for pixel what dataset/synthetic.py drew before the engine
drew them itself."""

from __future__ import annotations

import hashlib

import pytest
from PIL import Image

from dataset.synthetic import generate
from engine.models.probes import FONT_FILES, IMAGE_SEED, PROBE_IMAGES, available_fonts, probe_images

# sha256 over every probe image's size, mode and pixels, as drawn at fbce5df (dataset/synthetic.py's
# renderer) with Pillow 13.0 and the six FONT_FILES. If it changes (other fonts, another FreeType),
# the probe set changed: bump IMAGES_KEY and measure again (bench/quant_check.py).
PROBE_PIXELS = "43fc39b1bbe8f2f9c5228fec37a68863583c9f96cf4789f91690e9dfc771b21f"


def test_the_probe_images_are_the_ones_the_int8_figures_were_measured_on():
    if available_fonts() != FONT_FILES:
        pytest.skip("not every font of FONT_FILES is installed: other fonts draw other pixels")
    digest = hashlib.sha256()
    for image in probe_images():
        digest.update(f"{image.size}{image.mode}".encode())
        digest.update(image.tobytes())
    assert digest.hexdigest() == PROBE_PIXELS


def test_the_sample_saves_the_probe_ads(tmp_path):
    """The bundled sample is the same drawing: its PNG files hold the probe ads' pixels."""
    ads = generate(tmp_path, count=PROBE_IMAGES, seed=IMAGE_SEED)
    probes = probe_images()
    saved = [(i, ad.file) for i, ad in enumerate(ads) if ad.file.endswith(".png")]
    assert len(saved) == 16
    for index, file in saved:
        with Image.open(tmp_path / file) as image:
            assert image.tobytes() == probes[index].tobytes(), file
