"""Diversity (MMR) and relevance feedback (recommend queries) on a library holding near-copies of
one ad: the copies crowd a plain search, spread out under --diverse, and drop out when the ad is
given as a negative example."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image

from engine.errors import SearchError
from engine.library import Library
from engine.search import SearchRequest


def readable(truth):
    return [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]]


@pytest.fixture(scope="module")
def copies_library(tmp_path_factory, settings, encoders, sample_dir, truth):
    """Eight distinct ads plus three near-copies of the first (resized, recompressed, nudged)."""
    folder = tmp_path_factory.mktemp("copies")
    ads = readable(truth)[:8]
    for ad in ads:
        shutil.copy(sample_dir / ad["file"], folder)
    original = Image.open(sample_dir / ads[0]["file"]).convert("RGB")
    for i, scale in enumerate((0.97, 0.93, 0.9)):
        copy = original.resize((int(original.width * scale), int(original.height * scale)))
        copy.putpixel((0, 0), (i, 255 - i, 7))
        buffer = io.BytesIO()
        copy.save(buffer, "JPEG", quality=90 - 10 * i)
        (folder / f"copy-{i}.jpg").write_bytes(buffer.getvalue())
    # diversity 0.6, above the default: beside the copies, this tiny library holds no other ad
    # relevant to the query, so a light trade of relevance for variety keeps the copies on top
    db = tmp_path_factory.mktemp("copies-db")
    library = Library(settings.with_overrides(db=db, mmr_diversity=0.6), encoders=encoders)
    library.ingest([folder])
    yield library, ads[0]
    library.close()


def group(library: Library, hits) -> list[bool]:
    """For each hit: is it the first ad or one of its copies?"""
    return [
        h.paths[0].rsplit("/", 1)[-1].startswith("copy-") or h.paths[0].endswith(library.first_name)
        for h in hits
    ]


def test_near_copies_crowd_a_plain_search_and_spread_out_when_diverse(copies_library):
    library, ad = copies_library
    library.first_name = ad["file"].rsplit("/", 1)[-1]
    plain = library.search(SearchRequest(q=ad["headline"], k=5))
    diverse = library.search(SearchRequest(q=ad["headline"], k=5, diverse=True))
    crowded = sum(group(library, plain.hits))
    assert crowded >= 3  # the ad and its copies crowd the page
    assert 1 <= sum(group(library, diverse.hits)) < crowded  # still found, with room for other ads
    assert group(library, diverse.hits)[0]  # the best match stays first


def test_a_negative_example_takes_its_near_copies_with_it(copies_library):
    library, ad = copies_library
    library.first_name = ad["file"].rsplit("/", 1)[-1]
    plain = library.search(SearchRequest(q=ad["headline"], k=6))
    first = next(h for h in plain.hits if h.paths[0].endswith(library.first_name))
    feedback = library.search(SearchRequest(q=ad["headline"], k=6, negative=[first.id]))
    assert first.id not in {h.id for h in feedback.hits}
    assert sum(group(library, feedback.hits)) == 0  # the copies look like the negative: gone
    assert len(feedback.hits) == 6


def test_a_positive_example_brings_its_copies_up(copies_library):
    library, ad = copies_library
    library.first_name = ad["file"].rsplit("/", 1)[-1]
    other = readable_other = library.search(SearchRequest(q="zzzz unrelated words", k=10)).hits
    assert other and readable_other
    first = library.search(SearchRequest(q=ad["headline"], k=1)).hits[0]
    liked = library.search(SearchRequest(q="zzzz unrelated words", k=3, positive=[first.id]))
    assert first.id not in {h.id for h in liked.hits}
    assert sum(group(library, liked.hits)) == 3  # the three copies, without the example itself


def test_unknown_examples_are_refused(copies_library):
    library, _ = copies_library
    with pytest.raises(SearchError, match="feedback example"):
        library.search(SearchRequest(q="car", negative=["00000000-0000-0000-0000-000000000000"]))
