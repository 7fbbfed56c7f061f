"""Extension point (issue 22): a channel declared and registered from this file alone (no file outside
tests/ knows it) is stored with every ingested image, searched in its own mode, fused in hybrid
search, weighed by name and shown in the statistics."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from engine import channels
from engine.channels import Channel
from engine.errors import SearchError
from engine.library import Library
from engine.search import SearchRequest, parse_weights


def mean_colour(image: Image.Image) -> list[float]:
    """A 4-number vector: the image's mean red, green and blue, and 1 (so black is not the zero vector)."""
    pixels = np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.float32) / 255.0
    return [*pixels.reshape(-1, 3).mean(axis=0).tolist(), 1.0]


class ColourChannel(Channel):
    """Toy channel: ads that look alike in colour, from the pixels alone."""

    name, label, mode = "colour", "mean colour", "colour"
    reads_query_image = True

    def dim(self, encoders):
        return 4

    def encode_documents(self, encoders, images, texts):
        return [mean_colour(image) for image in images]

    def encode_query(self, encoders, text, image):
        return mean_colour(image) if image is not None else None  # a text query does not use it


@pytest.fixture()
def colour_library(tmp_path, settings, encoders, sample_dir):
    """A library over 8 sample ads, ingested with the toy channel registered."""
    channels.register(ColourChannel())
    folder = tmp_path / "ads"
    folder.mkdir()
    for path in sorted((sample_dir / "images").glob("*.png"))[:8]:
        shutil.copy(path, folder / path.name)
    library = Library(settings.with_overrides(db=tmp_path / "db"), encoders=encoders)
    try:
        report = library.ingest([folder])
        assert not report.failed and report.ingested == 8
        yield library, sorted(folder.iterdir())
    finally:
        library.close()
        channels.unregister("colour")


def test_a_toy_channel_is_stored_searched_fused_and_weighed(colour_library):
    library, files = colour_library
    assert library.store.dims()["colour"] == 4
    assert library.store.count("colour") == len(files)
    assert "colour" in channels.modes() and "colour" in channels.fused_names()

    target = files[3]
    image = Image.open(target)
    alone = library.searcher.search(image=image, mode="colour", k=3)
    assert alone.channels == ["colour"]
    assert alone.hits[0].paths == [str(target.resolve())]  # its own colour: cosine 1
    assert alone.hits[0].score == pytest.approx(1.0, abs=1e-4)

    hybrid = library.search(SearchRequest(mode="hybrid", k=len(files)), image=image)
    assert "colour" in hybrid.channels
    top = next(h for h in hybrid.hits if h.paths == [str(target.resolve())])
    assert top.channels["colour"].rank == 1  # the toy channel's own ranking is part of the explanation

    assert parse_weights("colour=2,text=1") == {"colour": 2.0, "text": 1.0}
    assert library.stats()["channels"]["colour"] is True


def test_an_unregistered_channel_is_gone_and_names_are_unique(colour_library):
    with pytest.raises(ValueError, match="registered already"):
        channels.register(ColourChannel())
    channels.unregister("colour")
    assert "colour" not in channels.modes()
    with pytest.raises(SearchError, match="bad weight 'colour=2'"):
        parse_weights("colour=2")
    channels.register(ColourChannel())  # the fixture's teardown unregisters it again
