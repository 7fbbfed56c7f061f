"""SigLIP checkpoints, chosen by their own config, through the same loader, ONNX export, int8 check,
ingest, search and `models check` as CLIP. Offline: tiny random SigLIPs saved with save_pretrained,
one with SigLIP's SentencePiece tokenizer, one with a Gemma tokenizer.json as the fixed-resolution
SigLIP 2 checkpoints ship; a SigLIP 2 NaFlex config is refused in one clear line.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import ClipUnavailable
from engine.models.encoders import ImageTextEncoder, QuantThresholds, TorchTower, load_encoders
from engine.models.onnx_towers import OnnxTower
from engine.models.random_clip import SIGLIP_SIZES, SIGLIP_TEXT_LENGTH, save_random_siglip
from engine.search import SearchRequest

WIDTH = SIGLIP_SIZES["tiny"]["vision"]["hidden_size"]  # 32; the text tower is 24 wide
KEEP = QuantThresholds(0.0, 0.0)
TEXTS = [
    "Audi A7 Sportback",
    "cheap burger deal, only $3.99!",
    "I should buy this car because it is safe " * 9,
]


def pictures() -> list[Image.Image]:
    return [Image.new("RGB", (640, 480), (200, 30, 30)), Image.new("RGB", (300, 500), (20, 90, 200))]


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    return save_random_siglip(tmp_path_factory.mktemp("tiny-siglip"), "tiny")


@pytest.fixture(scope="module")
def siglip2_dir(tmp_path_factory):
    """Like google/siglip2-base-patch16-224: model type siglip, a Gemma tokenizer.json."""
    return save_random_siglip(tmp_path_factory.mktemp("tiny-siglip2"), "tiny", tokenizer="gemma")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_the_checkpoint_config_chooses_siglip_and_its_width(siglip_dir):
    encoder = ImageTextEncoder(str(siglip_dir))
    assert encoder.family == "siglip" and set(encoder.towers) == {"siglip-image", "siglip-text"}
    assert encoder.dim == WIDTH != SIGLIP_SIZES["tiny"]["text"]["hidden_size"]
    tokens = encoder._tokens(["buy now", "a much longer text about a car"])
    assert set(tokens) == {"input_ids"} and tokens["input_ids"].shape == (2, SIGLIP_TEXT_LENGTH)
    texts, images = encoder.encode_texts(TEXTS), encoder.encode_images(pictures())
    assert texts.shape == (3, WIDTH) and images.shape == (2, WIDTH)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, rtol=1e-5)


def test_vectors_are_siglip_s_own_recipe(siglip_dir):
    """Text padded to 64 tokens, no attention mask; images through the checkpoint's image processor."""
    from transformers import AutoProcessor, SiglipModel

    model = SiglipModel.from_pretrained(siglip_dir).eval()
    processor = AutoProcessor.from_pretrained(siglip_dir)
    with torch.no_grad():
        tokens = processor.tokenizer(
            TEXTS, padding="max_length", max_length=64, truncation=True, return_tensors="pt"
        )
        texts = model.get_text_features(input_ids=tokens["input_ids"]).pooler_output.numpy()
        pixels = processor.image_processor(images=pictures(), return_tensors="pt")["pixel_values"]
        images = model.get_image_features(pixel_values=pixels).pooler_output.numpy()
    encoder = ImageTextEncoder(str(siglip_dir))
    assert _cosines(encoder.encode_texts(TEXTS), texts).min() > 0.9999
    assert _cosines(encoder.encode_images(pictures()), images).min() > 0.9999


def test_onnx_towers_match_pytorch_and_the_int8_check_runs(siglip_dir, tmp_path):
    torch_path = ImageTextEncoder(str(siglip_dir))
    onnx = ImageTextEncoder(str(siglip_dir), onnx_cache=tmp_path)
    assert all(isinstance(t, TorchTower) for t in torch_path.towers.values())
    assert all(isinstance(t, OnnxTower) for t in onnx.towers.values())
    assert _cosines(onnx.encode_texts(TEXTS), torch_path.encode_texts(TEXTS)).min() > 0.9999
    assert _cosines(onnx.encode_images(pictures()), torch_path.encode_images(pictures())).min() > 0.9999
    int8 = ImageTextEncoder(str(siglip_dir), "int8", onnx_cache=tmp_path, thresholds=KEEP)
    assert int8.precision == "int8"
    for name in ("siglip-image", "siglip-text"):
        check = int8.towers[name].check
        assert check["tower"] == name and 0 < check["cosine"] <= 1 and 0 <= check["agreement"] <= 1
    strict = ImageTextEncoder(
        str(siglip_dir), "int8", onnx_cache=tmp_path, thresholds=QuantThresholds(1.0, 1.0)
    )
    assert strict.precision == "fp32"
    np.testing.assert_array_equal(strict.encode_texts(TEXTS), onnx.encode_texts(TEXTS))


def test_a_siglip2_style_checkpoint_with_a_gemma_tokenizer_loads(siglip2_dir, tmp_path):
    from transformers import GemmaTokenizer

    encoder = ImageTextEncoder(str(siglip2_dir), onnx_cache=tmp_path)
    assert encoder.family == "siglip" and isinstance(encoder.processor.tokenizer, GemmaTokenizer)
    assert encoder._tokens(TEXTS)["input_ids"].shape == (3, SIGLIP_TEXT_LENGTH)
    assert encoder.encode_texts(TEXTS).shape == (3, WIDTH) and encoder.encode_images(pictures()).shape == (
        2,
        WIDTH,
    )


def test_siglip2_naflex_is_refused_in_one_clear_line(tmp_path, settings):
    from transformers import Siglip2Config

    folder = tmp_path / "naflex"
    Siglip2Config().save_pretrained(folder)
    with pytest.raises(ClipUnavailable) as refused:
        ImageTextEncoder(str(folder))
    message = str(refused.value)
    assert "\n" not in message and "model type siglip2" in message and "NaFlex" in message
    assert "supported: clip" in message and "siglip" in message and "siglip2-base-patch16-224" in message
    encoders = load_encoders(settings.with_overrides(clip_model=str(folder)), quiet=True)
    assert encoders.clip is None and "NaFlex" in encoders.clip_error


def test_a_siglip_folder_ingests_and_searches_end_to_end(siglip_dir, settings, sample_dir, truth, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's note about its httpx backend
        from fastapi.testclient import TestClient

    from api import create_app
    from engine.library import Library

    images = tmp_path / "images"
    images.mkdir()
    chosen = [a for a in truth if a["brand"]][:5] + [a for a in truth if not a["brand"]][:1]
    for ad in chosen:
        shutil.copy(sample_dir / ad["file"], images)
    library = Library(
        settings.with_overrides(
            db=tmp_path / "db",
            clip_model=str(siglip_dir),
            require_visual=True,
            clip_precision="int8",
            quant_min_cosine=0.0,
            quant_min_agreement=0.0,
        )
    )
    try:
        report = library.ingest([images])
        assert report.ingested == len(chosen) and not report.failed
        assert library.store.dims()["image"] == WIDTH
        assert library.store.count("image") == len(chosen)
        for mode in ("visual", "hybrid"):
            response = library.search(SearchRequest(q=chosen[0]["headline"], mode=mode).deeper(len(chosen)))
            assert "image" in response.channels and response.hits, mode
            assert any("image" in hit.channels for hit in response.hits)
        hybrid = library.search(SearchRequest(q=chosen[0]["headline"], mode="hybrid", k=3))
        assert hybrid.hits[0].paths[0].endswith(chosen[0]["file"].rsplit("/", 1)[-1])
        stats = library.stats()
        assert stats["models"]["image"] == str(siglip_dir)
        quantisation = stats["pipeline"]["quantisation"]
        assert quantisation["siglip-image"]["precision"] == "int8" and "cosine" in quantisation["siglip-text"]
        client = TestClient(create_app(library), base_url="http://127.0.0.1")
        page = client.get("/stats").text
        assert "int8 check" in page and "siglip-image" in page and "siglip-text" in page
        api = client.get("/api/stats").json()
        assert api["pipeline"]["quantisation"]["siglip-image"]["cosine"] > 0
    finally:
        library.close()


def test_models_check_passes_on_siglip_folders(siglip_dir, siglip2_dir, tmp_path):
    import json

    from engine.cli import main
    from engine.models import download as models

    for name, source, tokenizer_file in (
        ("v1", siglip_dir, "spiece.model"),
        ("v2", siglip2_dir, "tokenizer.json"),
    ):
        out = tmp_path / name
        models.download(str(source), out)
        assert tokenizer_file in json.loads((out / "manifest.json").read_text())["models"]["clip"]["files"]
        report = models.check(out)
        assert report.ok, report.lines
        assert report.dim == WIDTH
        assert any(f"image vector size {WIDTH} = vision width" in line for line in report.lines)
        assert any(f"text vector size {WIDTH} = vision width" in line for line in report.lines)
        assert main(["models", "check", str(out)]) == 0  # `adsearch models check DIR`
