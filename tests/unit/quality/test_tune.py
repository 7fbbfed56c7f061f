"""`adsearch tune`: local fusion equals Qdrant's, cross-validation, saved defaults and who wins over them."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from helpers import sample_images, serve

from api import create_app
from engine.cli import main
from engine.errors import UsageError
from engine.library import Library
from engine.quality.evaluate import evaluate, read_qrels, read_queries
from engine.quality.tune import (
    Fusion,
    TuneResult,
    channel_rankings,
    cross_validate,
    fuse,
    fused_scores,
    fusion_grid,
    save,
    tune,
)
from engine.search import SearchRequest
from engine.search.fusion import Rule
from engine.settings import TUNED_FUSION, Settings


@pytest.fixture(scope="module")
def library(settings, encoders, ingested):
    return Library(settings, store=ingested[0], encoders=encoders)  # shares the session store; no close


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, truth):
    """Headline queries judged against their own ad (as tests/unit/quality/test_evaluate.py builds them)."""
    folder = tmp_path_factory.mktemp("tune-labels")
    ads = [a for a in truth if a["brand"]][:12]
    (folder / "q.tsv").write_text("".join(f"q{i}\t{a['brand']} {a['headline']}\n" for i, a in enumerate(ads)))
    (folder / "q.qrels").write_text(
        "".join(f"q{i} 0 {a['file'].split('/', 1)[1]} 1\n" for i, a in enumerate(ads))
    )
    return folder / "q.tsv", folder / "q.qrels"


CELLS = [
    Fusion(3, (("image", 1.0), ("text", 3.0), ("keywords", 1.0)), 100),
    Fusion(1, (("image", 2.0), ("text", 0.5), ("keywords", 1.0)), 20),
    Fusion(20, (("image", 0.0), ("text", 1.0), ("keywords", 4.0)), 5),
    # the adaptive rule: where a query's wording is exact, the image channel (the tiny CLIP) and the
    # dense text channel both drop to the rule's weight; no channel but the lexical one is special
    Fusion(3, (("image", 1.0), ("text", 3.0), ("keywords", 1.0)), 100, Rule(0.5, 0.05, 3.0)),
    Fusion(1, (("image", 2.0), ("text", 0.5), ("keywords", 1.0)), 20, Rule(0.6, 0.5)),
]


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.label())
def test_local_fusion_scores_equal_qdrants(library, truth, cell):
    """The grid is scored with our own RRF: it must give every hit the score Qdrant's fusion gives it."""
    tuned = Library(library.settings.with_overrides(**cell.settings()), store=library.store,
                    encoders=library.encoders)  # fmt: skip
    channels = [c for c, _ in cell.weights]
    assert tuned.searcher.available("hybrid") == channels  # the tiny CLIP makes the image channel real
    compared, exact = 0, 0
    for ad in truth[:10]:
        text = f"{ad['brand']} {ad['headline']}"
        rankings = channel_rankings(tuned, text, channels, 100)
        ours = dict(zip(rankings.ids, fused_scores(rankings, cell), strict=True))
        response = tuned.search(SearchRequest(q=text, mode="hybrid", k=10), snippets=False)
        hits = response.hits
        if cell.rule:  # the grid's test of the wording is the engine's
            leads = cell.rule.exact(*rankings.coverage, rankings.stand_out)
            exact += leads
            assert (response.fusion["rule"] != "no exact wording") == leads
            assert response.fusion["weights"] == dict(zip(channels, cell.weights_for(rankings), strict=True))
        assert [round(float(ours[h.id]), 5) for h in hits] == pytest.approx([h.score for h in hits], abs=2e-5)
        top = fuse(rankings, cell)
        assert sorted(ours[i] for i in top) == sorted(ours[h.id] for h in hits)  # same scores in the top
        compared += len(hits)
    assert compared >= 50
    assert not cell.rule or exact > 0  # the rule's cells fused some queries with its weights


def test_grid_starts_with_the_current_settings_and_skips_all_zero_weights():
    current = Fusion(7, (("text", 3.0), ("keywords", 1.0)), 100)
    cells = fusion_grid(["text", "keywords"], current)
    assert cells[0] == current and cells.count(current) == 1
    assert all(any(w for _, w in c.weights) for c in cells)
    assert {c.rrf_k for c in cells} >= {1, 3, 60} and {c.prefetch_limit for c in cells} >= {20, 100}


def test_cross_validation_scores_each_query_with_a_choice_made_without_it():
    # cell 1 is best in-sample (2/3), but leaving out either of its good queries makes the two cells
    # tie on the rest, and a tie keeps cell 0: held out, every query scores 0
    scores = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    cv, choices = cross_validate(scores, folds=3)
    assert cv == 0.0 and sorted(choices) == [0, 0, 1]
    dominant = np.array([[0.2, 0.4, 0.1, 0.3], [0.5, 0.9, 0.6, 0.7]])
    cv, choices = cross_validate(dominant, folds=2)
    assert choices == [1, 1] and cv == pytest.approx(dominant[1].mean())


def test_tune_reproduces_evaluates_figure_for_the_current_settings(library, labelled):
    queries, qrels = read_queries(labelled[0]), read_qrels(labelled[1])
    result = tune(library, queries, qrels, metric="mrr@10", folds=3)
    evaluated = evaluate(library, queries, qrels, ["hybrid"], k=10).metrics["hybrid"]["mrr@10"]
    assert result.cells[result.default_index] == Fusion.of(
        library.searcher.settings, ["image", "text", "keywords"]
    )
    assert result.means[result.default_index] == pytest.approx(evaluated, abs=1e-3)
    assert result.verified["current"] == evaluated  # the engine's own figure, reported beside the grid's
    best = Library(library.settings.with_overrides(**result.best.settings()), store=library.store,
                   encoders=library.encoders)  # fmt: skip
    assert result.verified["best"] == evaluate(best, queries, qrels, ["hybrid"]).metrics["hybrid"]["mrr@10"]
    assert result.means[result.best_index] == max(result.means) >= result.means[result.default_index]
    assert 0.0 <= result.cross_validated <= 1.0 and result.queries == len(queries)
    rules = [c for c in result.cells if c.rule]  # the adaptive rule's parameters are learnt too
    assert {c.rule.coverage for c in rules} >= {0.5, 1.0} and {c.rule.weight for c in rules} >= {0.0, 0.5}
    assert {c.rule.stand_out for c in rules} >= {0.0, 5.0}
    assert result.best.settings()["fusion"] == ("adaptive" if result.best.rule else "fixed")
    with pytest.raises(UsageError, match="unknown metric"):
        tune(library, queries, qrels, metric="map@100")
    with pytest.raises(UsageError, match="at least 20"):
        tune(library, queries, qrels, folds=20)


@pytest.fixture()
def own_library(tmp_path, settings, encoders, sample_dir):
    """A small collection of its own: saving writes its metadata."""
    images = sample_images(sample_dir, tmp_path / "images", 12)
    own = settings.with_overrides(db=tmp_path / "db")
    with Library(own, encoders=encoders) as lib:
        lib.ingest([images])
    return own


def test_saved_settings_become_the_search_default_but_env_and_flags_win(own_library, encoders, monkeypatch):
    with Library(own_library, encoders=encoders) as lib:
        cell = Fusion(13, (("image", 0.5), ("text", 2.0), ("keywords", 0.0)), 50)
        result = TuneResult("ndcg@10", [Fusion.of(lib.searcher.settings, [c for c, _ in cell.weights]), cell],
                            [0.4, 0.5], queries=10, folds=5, cross_validated=0.45)  # fmt: skip
        record = save(lib, result, source="q.tsv / q.qrels")
        assert lib.store.metadata()[TUNED_FUSION]["rrf_k"] == 13 and record["before"] == 0.4
        assert lib.searcher.settings.rrf_k == 13  # the library re-reads it at once
        assert lib.searcher.settings.weights == {"image": 0.5, "text": 2.0, "keywords": 0.0}
        fusion = lib.stats()["fusion"]
        assert fusion["rrf_k"] == 13 and fusion["tuned"]["cross_validated"] == 0.45
        with serve(create_app(lib)) as port:  # what /api/stats and the stats page say
            base = f"http://127.0.0.1:{port}"
            assert httpx.get(f"{base}/api/stats").json()["fusion"]["prefetch_limit"] == 50
            page = httpx.get(f"{base}/stats").text
            assert "RRF k 13" in page and "0.4500 cross-validated" in page and "adsearch tune" in page
        assert lib.searcher.settings.fusion == "fixed"  # the saved cell was of fixed weights
        learnt = Fusion(13, cell.weights, 50, Rule(0.75, 0.2, 8.0))
        save(lib, TuneResult("ndcg@10", [cell, learnt], [0.5, 0.6], queries=10, folds=5,
                             cross_validated=0.55), source="q.tsv / q.qrels")  # fmt: skip
        used = lib.searcher.settings
        assert (used.fusion, used.exact_coverage, used.exact_weight, used.exact_stand_out) == (
            "adaptive", 0.75, 0.2, 8.0)  # fmt: skip
    with Library(own_library.with_overrides(rrf_k=4), encoders=encoders) as lib:  # a flag
        assert lib.searcher.settings.rrf_k == 4 and lib.searcher.settings.prefetch_limit == 50
    monkeypatch.setenv("ADSEARCH_PREFETCH_LIMIT", "70")  # the environment
    from_env = Settings(db=own_library.db, clip_model=own_library.clip_model)
    with Library(from_env, encoders=encoders) as lib:
        assert lib.searcher.settings.prefetch_limit == 70 and lib.searcher.settings.rrf_k == 13


def test_cli_tune_saves_and_writes_the_grid(own_library, truth, tmp_path, capsys):
    names = {p.name for p in (own_library.db.parent / "images").iterdir()}
    ads = [a for a in truth if a["file"].rsplit("/", 1)[-1] in names and a["brand"]]
    (tmp_path / "q.tsv").write_text("".join(f"q{i}\t{a['headline']}\n" for i, a in enumerate(ads)))
    (tmp_path / "q.qrels").write_text(
        "".join(f"q{i} 0 {a['file'].rsplit('/', 1)[-1]} 1\n" for i, a in enumerate(ads))
    )
    args = ["tune", "--db", str(own_library.db), "--clip-model", own_library.clip_model,
            "--queries", str(tmp_path / "q.tsv"), "--qrels", str(tmp_path / "q.qrels"),
            "--folds", "2", "--grid", str(tmp_path / "grid.tsv")]  # fmt: skip
    assert main([*args, "--save"]) == 0
    out = capsys.readouterr().out
    assert "current" in out and "2-fold cross-validated" in out and "saved as this collection's" in out
    lines = (tmp_path / "grid.tsv").read_text().splitlines()
    rule = ["fusion", "exact_coverage", "exact_stand_out", "exact_weight"]
    assert lines[0].split("\t") == ["rrf_k", "w_image", "w_text", "w_keywords", "prefetch", *rule, "ndcg@10"]
    assert {line.split("\t")[5] for line in lines[1:]} == {"fixed", "adaptive"}
    values = [float(line.split("\t")[-1]) for line in lines[1:]]
    assert values == sorted(values, reverse=True) and len(values) > 1000
    with Library(own_library) as lib:
        saved = lib.store.metadata()[TUNED_FUSION]
        assert saved["in_sample"] == pytest.approx(values[0], abs=0.05) and saved["rrf_k"] == int(
            lines[1].split("\t")[0]
        )
    assert main([*args[:-4], "--folds", "1"]) == 2  # a usage error, one line
    assert "--folds must be between 2 and 20" in capsys.readouterr().err
    assert main(["tune", "--db", str(own_library.db), "--forget"]) == 0
    with Library(own_library) as lib:
        assert lib.store.metadata().get(TUNED_FUSION) is None and lib.stats()["fusion"]["rrf_k"] == 3
