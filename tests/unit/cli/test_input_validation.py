"""Issue #12: every number and list a user can pass (query weights, settings, CLI flags, API
parameters) is refused with a reason when it is NaN, infinite, out of range or repeated."""

from __future__ import annotations

import math
import re

import httpx
import pytest
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.settings import ServeSettings
from engine.channels import fused_names
from engine.cli import main
from engine.errors import SearchError
from engine.search import Searcher, parse_weights
from engine.settings import MAX_WEIGHT, Settings

# --------------------------------------------------------------------------- (a) parse_weights

# values as a user could type them: float spellings (nan, inf, 1e+300, -0.0), special strings, junk
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "NaN", "-nan", "inf", "+inf", "-inf", "Infinity", "1e309", "-1e309", "1e39",
                     "1000", "1000.0001", "1001", "0", "-0", "1e-320", " 2 ", "", "0x10", "abc", "1=2"]),
    st.text(alphabet=st.characters(blacklist_characters=","), max_size=6),
)  # fmt: skip
CHANNELS = fused_names()
NAMES = st.one_of(
    st.sampled_from(CHANNELS),
    st.sampled_from([" text ", "Text", "IMAGE", "keyword", "img", "bogus", "", " "]),
    st.text(alphabet=st.characters(blacklist_characters=",="), max_size=6),
)
PARTS = st.lists(st.tuples(NAMES, st.booleans(), VALUES), max_size=5)


def expected_weights(parts: list[tuple[str, bool, str]]) -> dict[str, float] | None:
    """The specification: the weights `parts` mean, or None when they must be refused."""
    weights: dict[str, float] = {}
    for name, has_sep, value in parts:
        if not (f"{name}={value}" if has_sep else name).strip():
            continue  # an empty item between commas is ignored
        if not has_sep or name.strip() not in CHANNELS or name.strip() in weights:
            return None
        try:
            number = float(value)
        except ValueError:
            return None
        if math.isnan(number) or not 0 <= number <= MAX_WEIGHT:
            return None
        weights[name.strip()] = number
    if len(weights) == len(CHANNELS) and all(w == 0 for w in weights.values()):
        return None
    return weights


@given(parts=PARTS)
@hsettings(max_examples=600, deadline=None)
@example(parts=[("text", True, "nan")])
@example(parts=[("text", True, "1"), ("text", True, "2")])
@example(parts=[("image", True, "0"), ("text", True, "0"), ("keywords", True, "0")])
def test_parse_weights_matches_the_specification(parts):
    text = ",".join(f"{n}={v}" if sep else n for n, sep, v in parts)
    want = expected_weights(parts)
    if want is None:
        with pytest.raises(SearchError, match="bad weight"):
            parse_weights(text)
    else:
        assert parse_weights(text) == want


# comma-separated items, most of them "name=value" with the names and values above (so known
# channels, repeats, nan, inf and negatives come up often), some arbitrary text
WEIGHT_STRINGS = st.lists(st.tuples(NAMES, VALUES).map("=".join) | st.text(max_size=4), max_size=5).map(
    ",".join
)


@given(text=st.one_of(WEIGHT_STRINGS, st.text()))
@hsettings(max_examples=600, deadline=None)
def test_parse_weights_on_any_text_refuses_or_gives_usable_weights(text):
    try:
        weights = parse_weights(text)
    except SearchError:
        return
    assert set(weights) <= set(CHANNELS)
    assert all(isinstance(w, float) and math.isfinite(w) and 0 <= w <= MAX_WEIGHT for w in weights.values())
    # every item given is one channel's weight: none dropped, none overwritten by a repeat
    assert len(weights) == len([p for p in text.split(",") if p.strip()])
    assert any(weights.values()) or len(weights) < len(CHANNELS)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("text=nan", "finite"),
        ("text=NaN", "finite"),
        ("text=inf", "finite"),
        ("text=-inf", "finite"),
        ("text=Infinity", "finite"),
        ("text=1e309", "finite"),  # overflows to inf
        ("text=1e39", "finite"),  # finite in Python, inf in Qdrant's float32
        ("text=1001", f"0 to {MAX_WEIGHT:g}"),
        ("text=-1", f"0 to {MAX_WEIGHT:g}"),
        ("text=1,text=2", "given twice"),
        ("text=1, text =1", "given twice"),
        ("bogus=1", "channel in image, text, keywords"),
        ("text", "channel in"),
        ("=1", "channel in"),
        ("text=", "not a number"),
        ("text=abc", "not a number"),
        ("image=0,text=0,keywords=0", "every channel is 0"),
    ],
)
def test_bad_weights_are_refused_with_the_reason(text, reason):
    with pytest.raises(SearchError, match="bad weight") as caught:
        parse_weights(text)
    assert reason in str(caught.value)


def test_good_weights_are_read():
    assert parse_weights(None) == parse_weights("") == parse_weights(" , ") == {}
    assert parse_weights(" text = 2 ,image=0.5") == {"text": 2.0, "image": 0.5}
    assert parse_weights("image=0,text=0") == {"image": 0.0, "text": 0.0}  # keywords keeps its weight
    assert parse_weights(f"keywords={MAX_WEIGHT:g}") == {"keywords": MAX_WEIGHT}


# --------------------------------------------------------------------------- (b) Settings

BAD_SETTINGS = [
    ("workers", 0), ("workers", -1), ("workers", 10**6),
    ("batch_size", 0), ("batch_size", -16), ("batch_size", 10**6),
    ("port", 0), ("port", -1), ("port", 65536),
    ("rrf_k", 0), ("rrf_k", -3), ("rrf_k", 10**12),
    ("prefetch_limit", 0), ("prefetch_limit", 10_001),
    ("max_upload_bytes", 0), ("max_upload_files", 0), ("max_query_chars", 0), ("max_image_pixels", 0),
    ("max_concurrent_requests", 0), ("shard_number", 0), ("replication_factor", 0),
    ("bm25_avg_len", 0.0), ("bm25_avg_len", -1.0), ("bm25_avg_len", math.nan), ("bm25_avg_len", math.inf),
    ("ocr_min_confidence", math.nan), ("ocr_min_confidence", math.inf), ("ocr_min_confidence", -1.0),
    ("ocr_min_confidence", 100.5), ("ocr_ppocr_min_confidence", math.nan), ("ocr_ppocr_min_confidence", 101),
    ("clip_dim", 0), ("clip_dim", 10**6), ("keyword_ngram", -1), ("keyword_ngram", 11),
    ("ocr_psm", -1), ("ocr_psm", 14), ("ocr_ppocr_det_side", 0), ("ocr_ppocr_det_side", 10**6),
    ("ocr_scales", ()), ("ocr_scales", (0,)), ("ocr_scales", (700, -1)), ("ocr_scales", (10**6,)),
    ("ocr_scales", tuple(range(100, 1000, 100))), ("ocr_retry_below_words", -1),
    ("weights", {"text": math.nan}), ("weights", {"text": math.inf}), ("weights", {"text": -1.0}),
    ("weights", {"text": 1e39}),
]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), BAD_SETTINGS)
def test_bad_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(ValidationError) as caught:
        ServeSettings().with_overrides(**{field: value})
    assert {error["loc"][0] for error in caught.value.errors()} == {field}


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("workers", 1, 1), ("batch_size", 1, 1), ("batch_size", 1024, 1024),
        ("port", 1, 1), ("port", 65535, 65535), ("rrf_k", 1, 1), ("prefetch_limit", 10_000, 10_000),
        ("bm25_avg_len", 0.5, 0.5), ("ocr_min_confidence", 0.0, 0.0), ("ocr_ppocr_min_confidence", 100, 100),
        ("keyword_ngram", 0, 0), ("ocr_psm", 13, 13), ("ocr_scales", (700, 700, 1600), (700, 1600)),
        ("weights", {"text": 0.0}, {"text": 0.0}),
        ("weights", {"image": MAX_WEIGHT, "text": 0.0, "keywords": 0.0},
         {"image": MAX_WEIGHT, "text": 0.0, "keywords": 0.0}),
    ],
)  # fmt: skip
def test_good_settings_are_kept(field, value, stored):
    assert getattr(ServeSettings().with_overrides(**{field: value}), field) == stored


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ADSEARCH_BATCH_SIZE", "0"),
        ("ADSEARCH_RRF_K", "0"),
        ("ADSEARCH_BM25_AVG_LEN", "nan"),
        ("ADSEARCH_OCR_MIN_CONFIDENCE", "inf"),
        ("ADSEARCH_WEIGHTS", '{"text": NaN}'),
        ("ADSEARCH_WEIGHTS", '{"text": 1e999}'),
        ("ADSEARCH_PORT", "99999"),
    ],
)
def test_bad_environment_values_are_refused(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        ServeSettings()
    assert caught.value.errors()[0]["loc"][0] == variable.removeprefix("ADSEARCH_").lower()


@given(weight=st.floats(allow_nan=True, allow_infinity=True))
@hsettings(max_examples=200, deadline=None)
def test_a_settings_weight_is_kept_exactly_when_finite_and_in_range(weight):
    good = math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT
    try:
        kept = Settings().with_overrides(weights={"text": weight}).weights
    except ValidationError as exc:
        assert not good, exc
        assert "weight of text" in str(exc)
    else:
        assert good and kept == {"text": weight}


# --------------------------------------------------------------------------- (c) the CLI


class Opened(Exception):
    """Raised by the stand-in store: the command got past its checks."""


@pytest.fixture
def no_store(monkeypatch):
    """The store and the models must not be touched before the arguments are checked."""

    def refuse(*args, **kwargs):
        raise Opened

    monkeypatch.setattr("engine.library.Library", refuse)
    monkeypatch.setattr("engine.store.open_store", refuse)
    monkeypatch.setattr("uvicorn.run", refuse)
    for name in ("BATCH_SIZE", "WORKERS", "PORT", "WEIGHTS", "RRF_K"):
        monkeypatch.delenv(f"ADSEARCH_{name}", raising=False)


def run_cli(capsys, *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert out == ""
    return code, err.strip().splitlines()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "car", "-k", "0"], "-k must be between 1 and 1000, not 0"),
        (["search", "car", "-k", "1001"], "-k must be between 1 and 1000, not 1001"),
        (["search", "car", "--offset", "-1"], "--offset must be between 0 and 10000, not -1"),
        (["search", "car", "--offset", "10001"], "--offset must be between 0 and 10000, not 10001"),
        (["search", "car", "--weights", "text=nan"], "bad weight 'text=nan'"),
        (["search", "car", "--weights", "text=inf"], "bad weight 'text=inf'"),
        (["search", "car", "--weights", "text=-1"], "bad weight 'text=-1'"),
        (["search", "car", "--weights", "text=1,text=2"], "channel text is given twice"),
        (["search", "car", "--weights", "bogus=1"], "bad weight 'bogus=1'"),
        (["ingest", ".", "--batch-size", "0"], "bad value for --batch-size / ADSEARCH_BATCH_SIZE: "),
        (["ingest", ".", "--batch-size", "100000"], "bad value for --batch-size / ADSEARCH_BATCH_SIZE: "),
        (["ingest", ".", "--workers", "0"], "bad value for --workers / ADSEARCH_WORKERS: "),
        (["ingest", ".", "--workers", "-2"], "bad value for --workers / ADSEARCH_WORKERS: "),
        (["ingest", ".", "--workers", "1000000"], "bad value for --workers / ADSEARCH_WORKERS: at most"),
        (["search", "car", "--shard-number", "0"], "bad value for --shard-number / ADSEARCH_SHARD_NUMBER: "),
        (["serve", "--port", "0"], "bad value for --port / ADSEARCH_PORT: "),
        (["serve", "--port", "65536"], "bad value for --port / ADSEARCH_PORT: "),
        (["serve", "--max-concurrent-requests", "0"], "bad value for --max-concurrent-requests / "),
        (["evaluate", "--queries", "q.tsv", "--qrels", "q.qrels", "-k", "0"], "-k must be between 1 and 100"),
        (["evaluate", "--queries", "q.tsv", "--qrels", "q.qrels", "--modes", ","], "--modes names no mode"),
        (["migrate", "--from", "a", "--to", "b", "--batch-size", "0"], "--batch-size must be between 1"),
        (["migrate", "--from", "a", "--to", "b", "--batch-size", "5000"], "--batch-size must be between 1"),
    ],
)
def test_cli_refuses_a_bad_value_in_one_line_before_opening_anything(capsys, no_store, argv, message):
    code, lines = run_cli(capsys, *argv)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("adsearch: error: ") and message in lines[0], lines[0]


def test_cli_names_the_variable_of_a_bad_environment_setting(capsys, no_store, monkeypatch):
    monkeypatch.setenv("ADSEARCH_RRF_K", "0")
    code, lines = run_cli(capsys, "stats")
    assert code == 2 and lines == ["adsearch: error: bad setting ADSEARCH_RRF_K: "
                                   "Input should be greater than or equal to 1"]  # fmt: skip
    monkeypatch.setenv("ADSEARCH_RRF_K", "3")
    monkeypatch.setenv("ADSEARCH_WEIGHTS", '{"text": NaN}')
    code, lines = run_cli(capsys, "search", "car")  # `search --weights` is not this setting
    assert (
        code == 2 and len(lines) == 1 and lines[0].startswith("adsearch: error: bad setting ADSEARCH_WEIGHTS")
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "car", "-k", "1000", "--offset", "10000", "--weights", "image=0,text=1000"],
        ["ingest", ".", "--workers", "1", "--batch-size", "1024"],
        ["serve", "--port", "65535", "--max-concurrent-requests", "1"],
        ["migrate", "--from", "a", "--to", "b", "--batch-size", "1024"],
    ],
)
def test_cli_passes_good_values_on_to_the_store(no_store, argv):
    with pytest.raises(Opened):
        main(argv)


# --------------------------------------------------------------------------- (d) the HTTP API


@pytest.fixture(scope="module")
def http(api_server):
    with httpx.Client(base_url=api_server, timeout=60) as client:
        yield client


def assert_ranked_with_finite_scores(data: dict) -> None:
    scores = [hit["score"] for hit in data["hits"]]
    for hit in data["hits"]:
        for value in (hit["score"], *(m["score"] for m in hit["channels"].values())):
            assert isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value)
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        ("text=nan", "finite"),
        ("text=inf", "finite"),
        ("text=-inf", "finite"),
        ("text=1e309", "finite"),
        ("text=1e39", "finite"),
        ("text=-1", "finite numbers from 0"),
        ("text=1,text=2", "given twice"),
        ("bogus=1", "channel in image, text, keywords"),
        ("image=0,text=0,keywords=0", "every channel is 0"),
    ],
)
def test_api_refuses_bad_weights_with_the_reason(http, weights, reason):
    response = http.get("/api/search", params={"q": "car", "weights": weights})
    assert response.status_code == 422, response.text[:300]
    assert reason in response.json()["detail"]


def test_api_good_weights_give_finite_ordered_scores(http):
    for weights in ("text=2", "image=0,text=0", f"image={MAX_WEIGHT:g},keywords=0.001"):
        response = http.get("/api/search", params={"q": "burger deal", "weights": weights, "k": 20})
        assert response.status_code == 200, (weights, response.text[:300])
        assert response.json()["hits"]
        assert_ranked_with_finite_scores(response.json())


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/search?q=car", "k"),
        ("/api/search?q=car", "offset"),
        ("/api/images/00000000-0000-0000-0000-000000000000/similar", "k"),
        ("/api/images/00000000-0000-0000-0000-000000000000/thumbnail", "size"),
        ("/api/jobs", "limit"),
        ("/", "k"),
    ],
)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e309", "2.5", "-1", "99999999999999999999"])
def test_api_integer_parameters_refuse_non_integers_and_out_of_range(http, path, name, value):
    joiner = "&" if "?" in path else "?"
    response = http.get(f"{path}{joiner}{name}={value}")
    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"][0]["loc"][-1] == name


def test_a_non_ascii_api_key_is_refused_not_a_server_error(http, api_library):
    api_library.settings = api_library.settings.with_overrides(api_key="s3cret")
    try:
        missing = "00000000-0000-0000-0000-000000000000"
        response = http.delete(f"/api/images/{missing}", headers={"X-API-Key": "s3cr\xe9t".encode("latin-1")})
        assert response.status_code == 401
    finally:
        api_library.settings = api_library.settings.with_overrides(api_key="")


def test_thumbnail_sizes_round_up_to_a_few_cached_sizes(api_library):
    image_id = next(iter(api_library.store.scroll(batch=1, fields=["sha256"])))[0]
    assert api_library.thumbnail(image_id, 100) == api_library.thumbnail(image_id, 128)
    assert api_library.thumbnail(image_id, 1000).name.endswith("-1024.jpg")
    assert api_library.thumbnail(image_id, 32).name.endswith("-64.jpg")


@pytest.mark.parametrize(
    ("weights", "reason"),
    [({"pixels": 1.0}, "unknown channel(s) pixels; known: image, text, keywords"),
     ({"image": 0.0, "text": 0.0, "keywords": 0.0}, "every channel has weight 0")],
)  # fmt: skip
def test_default_weights_naming_no_registered_channel_or_all_zero_are_refused_by_search(
    settings, encoders, ingested, weights, reason
):
    """Channels are a registry a plug-in may add to after the settings load: the channel names in
    ADSEARCH_WEIGHTS are checked where search uses them, with the reason."""
    store, _ = ingested
    with pytest.raises(SearchError, match=re.escape(f"ADSEARCH_WEIGHTS: {reason}")):
        Searcher(settings.with_overrides(weights=weights), encoders, store)


def test_a_search_whose_used_channels_all_weigh_zero_is_refused(searcher):
    with pytest.raises(SearchError, match="weight 0"):
        searcher.search("car", weights={"image": 0.0, "text": 0.0, "keywords": 0.0})
    assert searcher.search("car", mode="text", weights={"text": 0.0}).hits  # one channel: no fusion


@pytest.mark.parametrize("name", ["", "../x", "a/b", "x" * 65, "ads."])
def test_collection_names_that_would_leave_the_store_folder_are_refused(name):
    with pytest.raises(ValidationError):
        Settings(collection=name)
