"""Fusion that reads the query (issue 25): on a hand-made collection whose dense channel is steered
on purpose, exact wording lets the keywords channel lead (the ad that says it ranks first where fixed
weights put a paraphrase first), a descriptive query that matches one generic word keeps the fixed
weights and their ranking, every response explains the weights it used, and --weights, a saved tune
and --fusion fixed win over the adaptive rule."""

from __future__ import annotations

import json

import pytest
from helpers import adsearch

from engine.channels import dims
from engine.library import Library
from engine.schema import SPARSE_CHANNEL, TEXT_CHANNEL
from engine.search import Searcher, SearchRequest
from engine.search.fusion import EXACT_COVERAGE, OTHER_WEIGHT, adaptive_plan, coverage
from engine.store import PointData, open_store

HEADLINE = "Twice the beef twice the pleasure"
# ads whose dense vectors are the query's own (so the dense channel ranks them first) and whose text
# shares one word with it: what fixed weights let outrank the ad that prints the headline
PARAPHRASES = ["Double beef burger deal today", "Beef lovers weekend special", "Our beef, your way"]
OTHERS = ["Fresh coffee every morning", "New phone with a brighter camera", "Ski holidays in the Alps"]


def point(encoders, number: int, text: str, dense_from: str | None = None) -> PointData:
    """An ad whose OCR text is `text`; its dense text vector is that of `dense_from` when given."""
    dense = encoders.dense.encode([dense_from or text])[0].tolist()
    sparse = encoders.sparse.encode_documents([text])[0]
    payload = {"ocr_text": text, "paths": [f"/ads/{number:02d}.png"], "has_text": True, "format": "PNG"}
    return PointData(f"00000000-0000-4000-8000-{number:012d}", {TEXT_CHANNEL: dense, SPARSE_CHANNEL: sparse},
                     payload)  # fmt: skip


def build(db, settings, encoders):
    """A library folder of 7 ads: the headline's own ad (id ...01, its dense vector made far from the
    headline: the dense channel disagrees), three paraphrases whose dense vectors are the headline's,
    three unrelated ads; its settings (no CLIP)."""
    own = settings.with_overrides(db=db, clip_model=str(db / "no-clip"))
    store = open_store(own)
    store.ensure_collection({TEXT_CHANNEL: dims(encoders)[TEXT_CHANNEL]})
    ads = [point(encoders, 1, HEADLINE, dense_from="Fresh salad bar and healthy greens")]
    ads += [point(encoders, 2 + n, text, dense_from=HEADLINE) for n, text in enumerate(PARAPHRASES)]
    ads += [point(encoders, 5 + n, text) for n, text in enumerate(OTHERS)]
    store.upsert(ads)
    store.close()
    return own, ads[0].id


@pytest.fixture(scope="module")
def made(tmp_path_factory, settings, encoders):
    own, own_ad = build(tmp_path_factory.mktemp("fusion-db"), settings, encoders)
    with Library(own, encoders=encoders) as library:
        yield library, own_ad


def ranking(library: Library, q: str, **options) -> tuple[list[str], dict]:
    response = library.search(SearchRequest(q=q, k=7, **options))
    return [h.id for h in response.hits], response.fusion


def test_exact_wording_ranks_its_ad_first_where_fixed_weights_put_a_paraphrase_first(made):
    library, own_ad = made
    fixed, plan = ranking(library, HEADLINE, fusion="fixed")
    assert fixed[0] != own_ad and plan["rule"] == "fixed"  # the dense channel's choice wins with 3:1
    adaptive, plan = ranking(library, HEADLINE, fusion="adaptive")
    assert adaptive[0] == own_ad
    assert plan["rule"] == "exact wording" and plan["weights"] == {
        TEXT_CHANNEL: OTHER_WEIGHT,
        SPARSE_CHANNEL: 1.0,
    }
    assert plan["reason"].startswith("exact wording: 3 of 3 query words on one line of an ad: keywords leads")


def test_a_descriptive_query_with_one_generic_keyword_keeps_the_fixed_weights(made):
    library, _ = made
    query = "tasty lunch offers near my office with beef"  # "beef" is on many ads; nothing else is
    adaptive, plan = ranking(library, query, fusion="adaptive")
    fixed, _ = ranking(library, query, fusion="fixed")
    assert plan["rule"] == "no exact wording" and plan["weights"] == {TEXT_CHANNEL: 3.0, SPARSE_CHANNEL: 1.0}
    assert adaptive == fixed


def test_weights_given_a_saved_tune_and_fusion_fixed_win(made):
    library, _ = made
    _, plan = ranking(library, HEADLINE, fusion="adaptive", weights="text=2,keywords=1")
    assert plan["rule"] == "given" and plan["weights"] == {TEXT_CHANNEL: 2.0, SPARSE_CHANNEL: 1.0}

    def plan_with(settings, fusion=None) -> dict:  # the same store searched under other settings
        return Searcher(settings, library.encoders, library.store).search(HEADLINE, fusion=fusion).fusion

    tuned = library.settings.with_tuned({"weights": {"image": 1.0, "text": 2.0, "keywords": 1.0}})
    plan = plan_with(tuned.with_overrides(fusion="adaptive"))
    assert plan["rule"] == "fixed" and plan["reason"] == "weights set by ADSEARCH_WEIGHTS or adsearch tune"
    adaptive = library.settings.with_overrides(fusion="adaptive")
    assert plan_with(adaptive)["rule"] == "exact wording"  # the setting is the default
    assert plan_with(adaptive, fusion="fixed")["rule"] == "fixed"  # a request's choice wins
    assert plan_with(library.settings)["rule"] == "exact wording"  # built-in default: adaptive


def test_the_cli_says_how_it_fused_and_the_environment_chooses(tmp_path, settings, encoders):
    own, _ = build(tmp_path / "db", settings, encoders)
    env = {"ADSEARCH_CLIP_MODEL": str(own.clip_model), "ADSEARCH_FUSION": "adaptive"}
    shown = adsearch("search", HEADLINE, "--db", str(own.db), "-k", "3", env_extra=env)
    assert shown.returncode == 0, shown.stderr
    assert "fusion: exact wording: 3 of 3 query words" in shown.stdout
    assert "[text=0.1, keywords=1]" in shown.stdout
    fixed = adsearch("search", HEADLINE, "--db", str(own.db), "--fusion", "fixed", "--json", env_extra=env)
    assert json.loads(fixed.stdout)["fusion"]["rule"] == "fixed"
    bad = adsearch("search", HEADLINE, "--db", str(own.db), "--fusion", "clever", env_extra=env)
    assert bad.returncode == 2 and "invalid choice: 'clever'" in bad.stderr


@pytest.mark.parametrize(
    ("best", "exact"),
    [("TWICE THE BEEF\nTWICE THE PLEASURE", True), ("twice the beef. twice the pleasure!", True),
     ("Beef\nPleasure", False), ("", False), (None, False)],
)  # fmt: skip
def test_the_rule_is_about_words_together_on_one_line_and_treats_every_other_channel_alike(best, exact):
    base = {"image": 1.0, "text": 3.0, "keywords": 1.0}
    plan = adaptive_plan(base, ["image", "text", "keywords"], "keywords", HEADLINE, best)
    assert (plan.rule == "exact wording") == exact
    if exact:  # the image channel (CLIP) gets what the dense text channel gets: no channel is special
        assert plan.weights == {"image": OTHER_WEIGHT, "text": OTHER_WEIGHT, "keywords": 1.0}
    else:
        assert plan.weights == base
    found, words = coverage(HEADLINE, best or "")
    assert (words and found / words >= EXACT_COVERAGE) == exact
