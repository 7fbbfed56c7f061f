"""The bundled-sample generator and the Pitt download helper."""

from __future__ import annotations

import json

from PIL import Image

from dataset.synthetic import ADS, NO_TEXT_MOTIFS, generate


def test_generates_images_and_truth(tmp_path):
    ads = generate(tmp_path, count=5, seed=1)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert len(ads) == len(truth) == 5
    for ad in truth:
        image = Image.open(tmp_path / ad["file"])
        assert image.width >= 600 and image.height >= 600
        assert ad["text"] == "\n".join([ad["brand"], ad["headline"], ad["small_print"]])


def test_default_sample_has_text_ads_and_text_free_images(tmp_path):
    truth = generate(tmp_path)
    assert len(truth) == len(ADS) + len(NO_TEXT_MOTIFS)
    assert sum(1 for a in truth if not a.text) == len(NO_TEXT_MOTIFS)
    assert any(a.rotated for a in truth) and any(a.low_contrast for a in truth)


def test_same_seed_same_bytes(tmp_path):
    a, b = generate(tmp_path / "a", count=3, seed=4), generate(tmp_path / "b", count=3, seed=4)
    for x, y in zip(a, b, strict=True):
        assert (tmp_path / "a" / x.file).read_bytes() == (tmp_path / "b" / y.file).read_bytes()


def test_pitt_fetch_unpacks_subfolders_and_skips_done_ones(tmp_path):
    import zipfile

    from dataset.pitt import fetch

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / "subfolder-3.zip", "w") as zf:
        zf.writestr("3/100.jpg", b"fake jpeg bytes")
    out = tmp_path / "pitt"
    (folder,) = fetch([3], out, base_url=mirror.as_uri())
    assert (folder / "100.jpg").read_bytes() == b"fake jpeg bytes"
    (mirror / "subfolder-3.zip").unlink()  # a second run must not download again
    assert fetch([3], out, base_url=mirror.as_uri()) == [folder]
