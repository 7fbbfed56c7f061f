"""Evaluation: run labelled queries in each mode and score the rankings with ir-measures.

Query file: `query_id<TAB>text` per line. Qrels: TREC (`query_id 0 image_key grade`). An image's
key is its stored path relative to the evaluation root (default: the deepest folder holding every
stored image, i.e. the folder that was ingested), with `/` separators: ingesting
`ads377/images` gives keys like `0/1060.jpg`. Images with several paths match on any of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ir_measures
from ir_measures import AP, RR, P, R, nDCG

from engine.errors import SearchError, UsageError
from engine.library import Library
from engine.search import SearchRequest

RUN_DEPTH = 100


def metric_set(k: int) -> dict[str, object]:
    """Our metric names -> ir-measures measures, at cutoff k."""
    return {
        f"mrr@{k}": RR @ k,
        "recall@1": R @ 1,
        "recall@5": R @ 5,
        f"recall@{k}": R @ k,
        f"p@{k}": P @ k,
        f"ndcg@{k}": nDCG @ k,
        "map@100": AP @ 100,
    }


def read_queries(path: str | Path) -> dict[str, str]:
    """`query_id<TAB>text` lines -> {query_id: text}."""
    queries = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        qid, tab, text = line.partition("\t")
        if not tab or not text.strip():
            raise UsageError(f"{path}:{number}: expected 'query_id<TAB>text'")
        queries[qid.strip()] = text.strip()
    return queries


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """TREC qrels -> {query_id: {image_key: grade}}."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise UsageError(f"{path}:{number}: expected 'query_id 0 image_key grade'")
        qid, _, key, grade = parts
        qrels.setdefault(qid, {})[key] = int(grade)
    return qrels


def image_keys(library: Library, root: str | Path | None = None) -> tuple[dict[str, list[str]], Path]:
    """{point id: keys (paths relative to root)} and the root used."""
    paths = {pid: p.get("paths", []) for pid, p in library.store.scroll(fields=["paths"])}
    all_paths = [path for ps in paths.values() for path in ps]
    if not all_paths:
        raise UsageError("the collection is empty: nothing to evaluate")
    base = (
        Path(root).resolve() if root else Path(os.path.commonpath([str(Path(p).parent) for p in all_paths]))
    )
    keys = {}
    for pid, ps in paths.items():
        keys[pid] = [Path(p).relative_to(base).as_posix() for p in ps if Path(p).is_relative_to(base)]
    return keys, base


@dataclass
class Evaluation:
    """Metrics per mode, per-query values, and the runs (query -> image key -> score)."""

    k: int
    root: Path
    queries: dict[str, str]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    per_query: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    runs: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    skipped_modes: dict[str, str] = field(default_factory=dict)


def evaluate(
    library: Library,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    modes: list[str],
    k: int = 10,
    root: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Evaluation:
    """Run every query in every mode; score with ir-measures. Queries without qrels are left out."""
    keys, base = image_keys(library, root)
    judged = {qid: text for qid, text in queries.items() if qid in qrels}
    if not judged:
        raise UsageError("no query has relevance judgements in the qrels file")
    result = Evaluation(k=k, root=base, queries=judged)
    measures = metric_set(k)
    for mode in modes:
        try:
            library.searcher.channels_for(mode)
        except SearchError as exc:
            result.skipped_modes[mode] = str(exc)
            continue
        run: dict[str, dict[str, float]] = {}
        for done, (qid, text) in enumerate(judged.items(), 1):
            run[qid] = _ranked_keys(library, text, mode, keys)
            if progress:
                progress(mode, done, len(judged))
        result.runs[mode] = run
        per_query: dict[str, dict[str, float]] = {qid: dict.fromkeys(measures, 0.0) for qid in judged}
        by_measure = {m: name for name, m in measures.items()}
        for value in ir_measures.iter_calc(list(measures.values()), {q: qrels[q] for q in judged}, run):
            per_query[value.query_id][by_measure[value.measure]] = float(value.value)
        result.per_query[mode] = per_query
        result.metrics[mode] = {
            name: round(sum(q[name] for q in per_query.values()) / len(per_query), 4) for name in measures
        } | {"queries": len(per_query)}
    return result


def _ranked_keys(library: Library, text: str, mode: str, keys: dict[str, list[str]]) -> dict[str, float]:
    """One query's ranking as {image key: score}, scores falling with rank (ties cannot reorder it)."""
    try:
        hits = library.search(SearchRequest(q=text, mode=mode).deeper(RUN_DEPTH), snippets=False).hits
    except SearchError:  # e.g. only stopwords for the keyword channel: an empty ranking
        return {}
    return ranking_of([hit.id for hit in hits], keys)


def ranking_of(point_ids: list[str], keys: dict[str, list[str]]) -> dict[str, float]:
    """Ranked point ids as {image key: score}, scores falling with rank (ties cannot reorder it)."""
    ranking: dict[str, float] = {}
    for pid in point_ids:
        for key in keys.get(pid, []):
            ranking.setdefault(key, float(RUN_DEPTH - len(ranking)))
    return ranking


def write_report(evaluation: Evaluation, out: str | Path, title: str = "Evaluation") -> list[Path]:
    """Write OUT.md, one TREC run file per mode, a per-query TSV and a PNG chart; return their paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    written = []
    for mode, run in evaluation.runs.items():
        path = Path(f"{stem}-{mode}.trec")
        lines = [
            f"{qid} Q0 {key} {rank} {score:g} adsearch-{mode}"
            for qid, ranking in run.items()
            for rank, (key, score) in enumerate(ranking.items(), 1)
        ]
        path.write_text("\n".join(lines) + "\n")
        written.append(path)
    per_query_path = Path(f"{stem}-per-query.tsv")
    names = list(metric_set(evaluation.k))
    rows = ["mode\tquery_id\t" + "\t".join(names) + "\tquery"]
    for mode, per_query in evaluation.per_query.items():
        for qid, values in per_query.items():
            rows.append(
                f"{mode}\t{qid}\t"
                + "\t".join(f"{values[n]:.4f}" for n in names)
                + f"\t{evaluation.queries[qid]}"
            )
    per_query_path.write_text("\n".join(rows) + "\n")
    chart = Path(f"{stem}.png")
    draw_chart(evaluation, chart, title)
    out.write_text(report_markdown(evaluation, title, [p.name for p in [*written, per_query_path, chart]]))
    return [out, *written, per_query_path, chart]


def report_markdown(evaluation: Evaluation, title: str, files: list[str] | None = None) -> str:
    """The metrics table per mode, then the best and worst queries of the first mode."""
    names = list(metric_set(evaluation.k))
    lines = [f"# {title}", "", f"Image keys relative to `{evaluation.root}`; metrics by ir-measures.", ""]
    lines += ["| mode | " + " | ".join(names) + " | queries |", "|---" * (len(names) + 2) + "|"]
    for mode, m in evaluation.metrics.items():
        lines.append(f"| {mode} | " + " | ".join(f"{m[n]:.3f}" for n in names) + f" | {m['queries']} |")
    for mode, reason in evaluation.skipped_modes.items():
        lines.append(f"\n{mode}: not run ({reason})")
    if evaluation.per_query:
        mode = next(iter(evaluation.per_query))
        key = names[0]
        ordered = sorted(evaluation.per_query[mode].items(), key=lambda item: (-item[1][key], item[0]))
        for label, chosen in (("Best", ordered[:5]), ("Worst", ordered[-5:])):
            lines += [
                "",
                f"{label} queries ({mode}, by {key}):",
                "",
                f"| query | {key} | text |",
                "|---|---|---|",
            ]
            lines += [f"| {qid} | {v[key]:.3f} | {evaluation.queries[qid]} |" for qid, v in chosen]
    if files:
        lines += ["", "Files: " + ", ".join(f"`{f}`" for f in files)]
    return "\n".join(lines) + "\n"


def draw_chart(evaluation: Evaluation, path: Path, title: str) -> None:
    """Grouped bar chart of the metrics per mode, drawn with Pillow."""
    from PIL import Image, ImageDraw, ImageFont

    names = list(metric_set(evaluation.k))
    modes = list(evaluation.metrics)
    colours = [(29, 95, 209), (26, 155, 75), (217, 138, 0), (140, 60, 200)]
    width, height, left, bottom, top = 900, 420, 60, 60, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 13)
    except OSError:
        font = ImageFont.load_default()
    draw.text((left, 15), title, fill="black", font=font)
    plot_h = height - bottom - top
    for tick in range(0, 11, 2):
        y = top + plot_h * (1 - tick / 10)
        draw.line([(left, y), (width - 20, y)], fill=(225, 225, 225))
        draw.text((20, y - 7), f"{tick / 10:.1f}", fill="black", font=font)
    group = (width - left - 20) / max(1, len(names))
    bar = group * 0.8 / max(1, len(modes))
    for i, name in enumerate(names):
        x0 = left + i * group + group * 0.1
        for j, mode in enumerate(modes):
            value = evaluation.metrics[mode][name]
            x = x0 + j * bar
            draw.rectangle([x, top + plot_h * (1 - value), x + bar - 2, top + plot_h], fill=colours[j % 4])
        draw.text((x0, height - bottom + 8), name, fill="black", font=font)
    for j, mode in enumerate(modes):
        draw.rectangle([width - 150, 15 + j * 18, width - 138, 27 + j * 18], fill=colours[j % 4])
        draw.text((width - 132, 13 + j * 18), mode, fill="black", font=font)
    image.save(path)
