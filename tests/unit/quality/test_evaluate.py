"""Evaluation: qrels/query parsing, image keys, metrics consistent with the rankings, report files."""

from __future__ import annotations

import pytest
from PIL import Image

from engine.errors import UsageError
from engine.library import Library
from engine.quality.evaluate import evaluate, read_qrels, read_queries, write_report
from engine.search import SearchRequest


@pytest.fixture(scope="module")
def library(settings, encoders, ingested):
    return Library(settings, store=ingested[0], encoders=encoders)  # shares the session store; no close


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, truth):
    folder = tmp_path_factory.mktemp("labels")
    ads = [a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"]][:6]
    (folder / "q.tsv").write_text(
        "".join(f"q{i}\t{a['headline']}\n" for i, a in enumerate(ads)) + "q-missing\tsomething absent\n"
    )
    (folder / "q.qrels").write_text(
        "".join(f"q{i} 0 {a['file'].split('/', 1)[1]} 1\n" for i, a in enumerate(ads))
        + "q-missing 0 nope.png 1\n"
    )
    return folder, ads


def test_parsing_and_errors(tmp_path, labelled):
    folder, ads = labelled
    queries, qrels = read_queries(folder / "q.tsv"), read_qrels(folder / "q.qrels")
    assert len(queries) == len(ads) + 1 and qrels["q0"] == {ads[0]["file"].split("/", 1)[1]: 1}
    (tmp_path / "bad.tsv").write_text("no tab here\n")
    with pytest.raises(UsageError, match="bad.tsv:1"):
        read_queries(tmp_path / "bad.tsv")
    (tmp_path / "bad.qrels").write_text("q1 0 a.png\n")
    with pytest.raises(UsageError, match="bad.qrels:1"):
        read_qrels(tmp_path / "bad.qrels")


def test_metrics_agree_with_the_rankings_and_count_every_query(library, labelled, sample_dir):
    folder, ads = labelled
    queries, qrels = read_queries(folder / "q.tsv"), read_qrels(folder / "q.qrels")
    result = evaluate(library, queries, qrels, ["text", "keyword"], k=10)
    assert result.root == (sample_dir / "images").resolve()  # the ingested folder, found by itself
    for mode in ("text", "keyword"):
        reciprocal = []
        for i, ad in enumerate(ads):
            names = [
                h.paths[0].rsplit("/", 1)[-1]
                for h in library.search(SearchRequest(q=queries[f"q{i}"], mode=mode, k=10)).hits
            ]
            target = ad["file"].rsplit("/", 1)[-1]
            reciprocal.append(1 / (names.index(target) + 1) if target in names else 0.0)
        expected = sum(reciprocal) / (len(ads) + 1)  # the unanswerable query counts as 0
        assert result.metrics[mode]["mrr@10"] == pytest.approx(expected, abs=1e-4)
        assert result.metrics[mode]["queries"] == len(ads) + 1
        assert result.per_query[mode]["q-missing"]["mrr@10"] == 0.0


def test_report_files(library, labelled, tmp_path):
    folder, _ = labelled
    result = evaluate(library, read_queries(folder / "q.tsv"), read_qrels(folder / "q.qrels"), ["keyword"])
    files = write_report(result, tmp_path / "out" / "report.md", title="Synthetic")
    names = sorted(f.name for f in files)
    assert names == ["report-keyword.trec", "report-per-query.tsv", "report.md", "report.png"]
    run_lines = (tmp_path / "out" / "report-keyword.trec").read_text().splitlines()
    qid, q0, key, rank, score, tag = run_lines[0].split()
    assert q0 == "Q0" and rank == "1" and tag == "adsearch-keyword" and key.endswith((".png", ".jpg"))
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| keyword |" in md and "Worst queries" in md
    assert Image.open(tmp_path / "out" / "report.png").size == (900, 420)


def test_unavailable_modes_are_reported_not_fatal(settings, encoders, ingested, labelled, tmp_path):
    from engine.models.encoders import Encoders

    text_only = Encoders(None, encoders.dense, encoders.sparse, clip_error="no weights")
    library = Library(settings, store=ingested[0], encoders=text_only)
    folder, _ = labelled
    result = evaluate(
        library, read_queries(folder / "q.tsv"), read_qrels(folder / "q.qrels"), ["visual", "text"]
    )
    assert "visual" in result.skipped_modes and "text" in result.metrics
