"""Fusion that reads the query (issue 25): on a hand-made collection whose dense channel is steered
on purpose, exact wording lets the keywords channel lead (the ad that says it ranks first where fixed
weights put a paraphrase first), a descriptive query that matches one generic word keeps the fixed
weights and their ranking, every response explains the weights it used, and --weights, a saved tune
(with the rule it learnt) and --fusion fixed win over the built-in rule."""

from __future__ import annotations

import json

import httpx
import pytest
from helpers import adsearch, serve

from api import create_app
from engine.channels import dims
from engine.library import Library
from engine.schema import SPARSE_CHANNEL, TEXT_CHANNEL
from engine.search import Searcher, SearchRequest
from engine.search.fusion import Rule, adaptive_plan, coverage, stand_out
from engine.settings import Settings
from engine.store import PointData, open_store

RULE = Rule.of(Settings())  # the built-in rule
HEADLINE = "Twice the beef twice the pleasure"
# ads whose dense vectors are the query's own (so the dense channel ranks them first) and whose text
# shares one word with it: what fixed weights let outrank the ad that prints the headline
PARAPHRASES = ["Double beef burger deal today", "Beef lovers weekend special", "Our beef, your way"]
# where each paraphrase's dense vector comes from: the headline itself for the shortest (which BM25
# also ranks second), near-copies of it for the others, so no two dense scores tie (a tie's order is
# the index's to choose, and the test must not depend on it)
STEERED = ["Twice the beef, twice the pleasure!", "twice the beef and twice the pleasure", HEADLINE]
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
    ads += [point(encoders, 2 + n, text, dense_from=steer)
            for n, (text, steer) in enumerate(zip(PARAPHRASES, STEERED, strict=True))]  # fmt: skip
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
        TEXT_CHANNEL: RULE.weight,
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

    weights = {"image": 1.0, "text": 2.0, "keywords": 1.0}
    old = plan_with(library.settings.with_tuned({"weights": weights}))  # saved before adaptive fusion
    assert old["rule"] == "fixed" and old["weights"] == {TEXT_CHANNEL: 2.0, SPARSE_CHANNEL: 1.0}
    learnt = {"weights": weights, "fusion": "adaptive", "exact_coverage": 0.9, "exact_weight": 0.25}
    plan = plan_with(library.settings.with_tuned(learnt))  # the tuned rule, over the tuned weights
    assert plan["rule"] == "exact wording" and plan["weights"] == {TEXT_CHANNEL: 0.25, SPARSE_CHANNEL: 1.0}
    strict = plan_with(library.settings.with_tuned({**learnt, "exact_coverage": 1.0}))
    assert strict["rule"] == "exact wording"  # 3 of 3 words: even full coverage holds
    chose_fixed = plan_with(library.settings.with_tuned({**learnt, "fusion": "fixed"}))
    assert chose_fixed["rule"] == "fixed"
    assert plan_with(library.settings.with_overrides(fusion="fixed").with_tuned(learnt))["rule"] == "fixed"
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
    assert f"[text={RULE.weight:g}, keywords=1]" in shown.stdout
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
    plan = adaptive_plan(base, ["image", "text", "keywords"], "keywords", HEADLINE, best, RULE)
    assert (plan.rule == "exact wording") == exact
    if exact:  # the image channel (CLIP) gets what the dense text channel gets: no channel is special
        assert plan.weights == {"image": RULE.weight, "text": RULE.weight, "keywords": 1.0}
    else:
        assert plan.weights == base
    found, words = coverage(HEADLINE, best or "")
    assert (words and found / words >= RULE.coverage) == exact


def test_a_best_keyword_score_far_above_the_tenth_is_a_distinctive_match_even_when_words_are_misread():
    base = {"image": 1.0, "text": 3.0, "keywords": 1.0}
    channels = ["image", "text", "keywords"]
    misread = "TW1CE THE BEEF\nTW1CE THE PLEASURE"  # OCR's reading: 2 of the 3 words are not there
    assert coverage(HEADLINE, misread)[0] < RULE.coverage * 3
    flat = stand_out([9.0, 8.5, 8.0, 7.9, 7.5, 7.0, 6.9, 6.5, 6.1, 6.0])  # one generic word: no leader
    steep = stand_out([40.0, 6.0, 5.0, 4.0, 4.0, 3.0, 3.0, 2.0, 2.0, 2.0])  # the 4-grams found the ad
    assert flat == 1.5 and steep == 20.0
    assert stand_out([]) == 0.0 and stand_out([3.0]) == float("inf")  # none; a lone match
    assert stand_out([40.0] + [4.0] * 20) == 10.0  # the 10th best, not the last
    plan = adaptive_plan(base, channels, "keywords", HEADLINE, misread, RULE, steep)
    assert plan.rule == "distinctive match" and plan.weights == {"image": RULE.weight, "text": RULE.weight,
                                                                 "keywords": 1.0}  # fmt: skip
    assert plan.reason.startswith("distinctive match: the best keywords score is 20.0x the 10th")
    assert adaptive_plan(base, channels, "keywords", HEADLINE, misread, RULE, flat).weights == base
    off = Rule(RULE.coverage, RULE.weight, stand_out=0.0)  # 0 turns the score signal off
    assert adaptive_plan(base, channels, "keywords", HEADLINE, misread, off, steep).rule == "no exact wording"


def test_the_json_api_takes_fusion_and_explains_it_over_http(made):
    library, own_ad = made
    with serve(create_app(library)) as port:
        url = f"http://127.0.0.1:{port}/api/search"
        answer = httpx.get(url, params={"q": HEADLINE, "k": 3}).json()
        assert answer["hits"][0]["id"] == own_ad
        assert answer["fusion"]["rule"] == "exact wording"
        assert answer["fusion"]["weights"] == {TEXT_CHANNEL: RULE.weight, SPARSE_CHANNEL: 1.0}
        fixed = httpx.get(url, params={"q": HEADLINE, "k": 3, "fusion": "fixed"}).json()
        assert fixed["fusion"] == {"rule": "fixed", "weights": {TEXT_CHANNEL: 3.0, SPARSE_CHANNEL: 1.0},
                                   "reason": "fixed weights"}  # fmt: skip
        assert fixed["hits"][0]["id"] != own_ad
        posted = httpx.post(url, json={"q": HEADLINE, "k": 3, "fusion": "fixed"}).json()
        assert posted["fusion"]["rule"] == "fixed"
        bad = httpx.get(url, params={"q": HEADLINE, "fusion": "clever"})
        assert bad.status_code == 422 and "fusion" in bad.text
