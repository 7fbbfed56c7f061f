"""The query cache: a repeated text query is encoded once per channel, the least recently used query
goes first past the capacity, a change to the collection empties it, and /metrics counts its hits
and misses exactly."""

from __future__ import annotations

import httpx
import pytest
from helpers import sample_images, serve
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from engine.library import Library
from engine.search import SearchRequest
from engine.search.encoding import QueryCache


def test_least_recently_used_goes_first_and_every_lookup_counts():
    cache, computed = QueryCache(capacity=2), []

    def value(key):
        return lambda: computed.append(key) or key

    assert cache.get(("text", "a"), value("a")) == "a"
    assert cache.get(("text", "b"), value("b")) == "b"
    assert cache.get(("text", "a"), value("a")) == "a"  # a hit: "a" is now the most recent
    cache.get(("text", "c"), value("c"))  # past the capacity: "b", the least recent, goes
    cache.get(("text", "a"), value("a"))
    cache.get(("text", "b"), value("b"))
    assert computed == ["a", "b", "c", "b"] and (cache.hits, cache.misses) == (2, 4) and len(cache) == 2
    cache.clear()
    assert len(cache) == 0 and (cache.hits, cache.misses) == (2, 4)  # counts outlive the entries


@pytest.fixture()
def library(tmp_path, settings, encoders, sample_dir):
    images = sample_images(sample_dir, tmp_path / "images", 6)
    with Library(settings.with_overrides(db=tmp_path / "db"), encoders=encoders) as lib:
        lib.ingest([images])
        yield lib, sample_dir


def scraped(text: str, name: str) -> float:
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
    return samples[0].value


def test_a_repeated_query_is_encoded_once_until_the_collection_changes(library):
    lib, sample_dir = library
    channels = lib.searcher.available("hybrid")
    first = lib.search(SearchRequest(q="cheap burger deal"))
    assert (lib.query_cache.hits, lib.query_cache.misses) == (0, len(channels))
    again = lib.search(SearchRequest(q="cheap burger deal", offset=0, k=5))  # paging, a smaller page
    assert (lib.query_cache.hits, lib.query_cache.misses) == (len(channels), len(channels))
    assert [h.id for h in again.hits] == [h.id for h in first.hits][:5]
    more = sorted((sample_dir / "images").iterdir())[6]
    lib.ingest([more])  # the collection changed: nothing cached before it is used after it
    assert len(lib.query_cache) == 0
    lib.search(SearchRequest(q="cheap burger deal"))
    assert lib.query_cache.misses == 2 * len(channels)


def test_metrics_count_the_caches_hits_and_misses(library):
    lib, _ = library
    with serve(create_app(lib)) as port:
        base = f"http://127.0.0.1:{port}"
        for _ in range(3):
            assert httpx.get(f"{base}/api/search", params={"q": "phone camera"}).status_code == 200
        text = httpx.get(f"{base}/metrics").text
    assert scraped(text, "adsearch_query_cache_hits_total") == lib.query_cache.hits > 0
    assert scraped(text, "adsearch_query_cache_misses_total") == lib.query_cache.misses > 0
    assert scraped(text, "adsearch_query_cache_entries") == len(lib.query_cache)
