"""MMR's effect on nDCG@10 and on the number of distinct creatives in the top 10, on ads377.

The collection is bench/ingest.py's ads377 collection (bench/.work/ads377-db, copied once to
bench/.work/diversity-db so a concurrent benchmark holding the original's lock does not block this
one). Search runs on the text channels only, as bench/quality.py's figures do (dense MiniLM `text`
+ BM25 `keywords`, fused by RRF with the default settings): the collection's image vectors come from
random-weight CLIP, which would only add noise. MMR (`diverse=True`) re-ranks the fused candidates
(the prefetch pool, 100) in the dense `text` channel; `Settings.mmr_diversity` sets the trade-off.

Creatives: images grouped by perceptual hash (imagehash's 64-bit pHash), two images in one group
when their hashes differ in at most `--phash-distance` bits (single-link, so groups are the
connected components); a second grouping puts images with the same non-empty OCR text (lower-cased,
whitespace folded) together. Distinct creatives in a top 10 = number of groups among its hits.
Metrics by ir-measures, on both dev query sets (known-item: MRR@10 and nDCG@10; topic: nDCG@10).
Also: intra-list similarity (ILS), the mean pairwise cosine of the hits' stored `text` vectors.

ads377 holds almost no near-copies, so a second collection adds them: every ad plus `--copies`
near-copies made by bench/query.py's `replicate` (dense vectors at cosine ~0.9 to the original,
BM25 weights jittered, 15 % of terms dropped), each copy in its original's creative group. There
a hit counts as its original image for the metrics and a copy of an ad already ranked is skipped,
so nDCG@10 is over the distinct ads a user sees in the 10 results.

    .venv/bin/python -m bench.diversity [--diversities 0.1,0.3,0.5,0.7] [--phash-distance 12] [--copies 2]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import ir_measures
import numpy as np
from ir_measures import RR, nDCG

from bench.common import WORK, write_results
from bench.ingest import DB
from bench.quality import SETS, load_sets
from bench.query import build, source_points
from engine.errors import SearchError
from engine.library import Library
from engine.quality.evaluate import image_keys
from engine.search import SearchRequest
from engine.settings import Settings
from engine.store import EdgeStore

COPY = WORK / "diversity-db"
K = 10


def collection() -> Path:
    """A private copy of the ads377 collection (made once)."""
    if not (COPY / "ads").exists():
        if not DB.exists():
            raise SystemExit("run `python -m bench.ingest` first: it builds the ads377 collection")
        shutil.copytree(DB, COPY, ignore=shutil.ignore_patterns(".lock"))
    return COPY


def with_copies(copies: int) -> Path:
    """ads377 plus `copies` near-copies of every ad (made once)."""
    db = WORK / f"diversity-copies{copies}-db"
    if not (db / "ads").exists():
        source, meta = source_points()
        with EdgeStore(db, "ads") as store:
            build(store, source, len(source) * (copies + 1), meta["dims"], meta)
    return db


def phash_groups(paths: dict[str, str], distance: int) -> dict[str, int]:
    """Point id -> creative group: connected components of 'pHash within `distance` bits'."""
    import imagehash
    from PIL import Image

    ids = list(paths)
    hashes = []
    for pid in ids:
        with Image.open(paths[pid]) as image:
            hashes.append(imagehash.phash(image.convert("RGB")))
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            if hashes[i] - hashes[j] <= distance:
                parent[root(i)] = root(j)
    return {pid: root(i) for i, pid in enumerate(ids)}


def text_groups(texts: dict[str, str]) -> dict[str, object]:
    """Point id -> creative group: the same non-empty normalised OCR text; no text = its own group."""
    return {pid: (" ".join(t.lower().split()) or pid) for pid, t in texts.items()}


def original(path: str) -> str:
    """The original image of a near-copy's path (`...jpg#copy2` -> `...jpg`)."""
    return path.split("#copy", 1)[0]


def creatives(library: Library, distance: int) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Both creative groupings (a copy joins its original's group) and each point's unit text vector."""
    payloads, vectors = {}, {}
    for point in library.store.points():
        payloads[point.id] = point.payload
        if "text" in point.vectors:
            v = np.asarray(point.vectors["text"], dtype=np.float32)
            vectors[point.id] = v / np.linalg.norm(v)
    first = {pid: original(p["paths"][0]) for pid, p in payloads.items()}
    by_file = phash_groups({f: f for f in set(first.values())}, distance)
    by_text = {f: "" for f in first.values()}
    for pid, p in payloads.items():
        if "#copy" not in p["paths"][0]:
            by_text[first[pid]] = p.get("ocr_text", "")
    text = text_groups(by_text)
    groups = {
        "phash": {pid: by_file[f] for pid, f in first.items()},
        "ocr_text": {pid: text[f] for pid, f in first.items()},
    }
    return groups, vectors


def ils(ids: list[str], vectors: dict[str, np.ndarray]) -> float | None:
    """Mean pairwise cosine of the hits' text vectors (None with fewer than two)."""
    rows = [vectors[p] for p in ids if p in vectors]
    if len(rows) < 2:
        return None
    m = np.stack(rows)
    sims = m @ m.T
    n = len(rows)
    return float((sims.sum() - n) / (n * (n - 1)))


def run(library: Library, queries: dict[str, str], diverse: bool) -> dict[str, list[str]]:
    """Each query's top-10 point ids, hybrid mode, with or without MMR."""
    out = {}
    for qid, text in queries.items():
        try:
            hits = library.search(
                SearchRequest(q=text, mode="hybrid", diverse=diverse).deeper(K), snippets=False
            ).hits
        except SearchError:
            hits = []
        out[qid] = [h.id for h in hits]
    return out


def score(ranked: dict[str, list[str]], qrels: dict, keys: dict, groups: dict[str, dict], vectors) -> dict:
    """nDCG@10, MRR@10 (ir-measures, every judged query counted), mean distinct creatives, mean ILS."""
    run_keys = {}
    for qid, ids in ranked.items():
        ranking: dict[str, float] = {}
        for pid in ids:
            for key in keys.get(pid, []):
                ranking.setdefault(key, float(K * 10 - len(ranking)))
        run_keys[qid] = ranking
    judged = {q: qrels[q] for q in ranked if q in qrels}
    measures = {"ndcg@10": nDCG @ K, "mrr@10": RR @ K}
    totals = dict.fromkeys(measures, 0.0)
    names = {m: n for n, m in measures.items()}
    for value in ir_measures.iter_calc(list(measures.values()), judged, run_keys):
        totals[names[value.measure]] += value.value
    out = {name: round(total / len(judged), 4) for name, total in totals.items()}
    for name, group in groups.items():
        distinct = [len({group[p] for p in ids}) for ids in ranked.values() if ids]
        out[f"distinct_{name}"] = round(sum(distinct) / len(distinct), 3)
    values = [v for v in (ils(ids, vectors) for ids in ranked.values()) if v is not None]
    out["ils"] = round(float(np.mean(values)), 4)
    out["hits_per_query"] = round(sum(len(ids) for ids in ranked.values()) / len(ranked), 2)
    return out


def evaluate_collection(db: Path, args) -> dict:
    """Every configuration (MMR off, then each diversity) on both query sets of one collection."""
    settings = Settings(db=db, clip_model=str(WORK / "no-clip-weights"))
    sets = load_sets()
    with Library(settings) as library:
        keys, _ = image_keys(library)
        keys = {pid: [original(k) for k in ks] for pid, ks in keys.items()}
        groups, vectors = creatives(library, args.phash_distance)
        base = library.searcher.settings
        results: dict = {"images": library.store.count(), "creatives": {}}
        results["creatives"] = {n: len(set(g.values())) for n, g in groups.items()}
        for name, (queries, qrels) in sets.items():
            rows = {"off": score(run(library, queries, False), qrels, keys, groups, vectors)}
            for d in (float(x) for x in args.diversities.split(",")):
                library.searcher.settings = base.with_overrides(mmr_diversity=d)
                rows[f"mmr {d}"] = score(run(library, queries, True), qrels, keys, groups, vectors)
            library.searcher.settings = base
            results[name] = rows
            print(db.name, name, rows, flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diversities", default="0.1,0.3,0.5,0.7", help="Settings.mmr_diversity values")
    parser.add_argument("--phash-distance", type=int, default=12, help="max pHash Hamming distance (bits)")
    parser.add_argument("--copies", type=int, default=2, help="near-copies per ad in the second collection")
    args = parser.parse_args(argv)
    data: dict = {"phash_distance": args.phash_distance, "copies": args.copies, "collections": {}}
    for label, db in (
        ("ads377", collection()),
        (f"ads377 + {args.copies} near-copies each", with_copies(args.copies)),
    ):
        data["collections"][label] = evaluate_collection(db, args)
    data["default_mmr_diversity"] = Settings().mmr_diversity
    data["channels"] = "text + keywords (RRF), MMR in the text channel"
    write_results("diversity", data, report(data))
    print(report(data))


def report(data: dict) -> str:
    """The markdown tables."""
    md = [
        "# MMR diversity on ads377: nDCG@10 and distinct creatives in the top 10 (issue #13)",
        "",
        __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
        "",
        f"pHash threshold: <= {data['phash_distance']} bits. Default `mmr_diversity` = "
        f"{data['default_mmr_diversity']}. {data['channels']}.",
    ]
    for label, coll in data["collections"].items():
        md += ["", f"## {label}: {coll['images']} points, {coll['creatives']['phash']} pHash creatives, "
               f"{coll['creatives']['ocr_text']} OCR-text creatives"]  # fmt: skip
        for name in SETS:
            md += [
                "",
                f"### {name}",
                "",
                "| MMR | nDCG@10 | MRR@10 | distinct creatives (pHash) | distinct creatives (OCR text) | ILS | hits |",
                "|---|---|---|---|---|---|---|",
            ]
            md += [
                f"| {cfg} | {r['ndcg@10']:.3f} | {r['mrr@10']:.3f} | {r['distinct_phash']} | "
                f"{r['distinct_ocr_text']} | {r['ils']} | {r['hits_per_query']} |"
                for cfg, r in coll[name].items()
            ]
    md += [
        "",
        "## Reading",
        "",
        "- ads377 itself has one near-copy pair (pHash distance 12: the same Avon ad with and without a",
        "  frame; the next closest pairs, 14 bits, are different ads), so without MMR the top 10 already",
        "  holds 10 distinct creatives and MMR can only cost relevance there.",
        "- MMR's relevance term is the query's cosine in the dense `text` channel, not the fused RRF",
        "  score: `diverse=True` re-ranks the fused pool of 100 by text similarity. Even at diversity 0.1",
        "  known-item MRR@10 / nDCG@10 fall to the text-only mode's (0.402 / 0.439 in",
        "  bench/results/quality.md): the loss is the fusion's gain (keywords channel, weights), and",
        "  higher diversity then costs more on top.",
        "- With near-copies in the collection MMR does its job: without it a top 10 shows ~5.6 distinct",
        "  ads; 0.3 gives ~9.7-10 and 0.5 gives 10. On the topic set, 0.1-0.3 even raise nDCG@10 over",
        "  distinct ads (more relevant ads fit in the 10); on the known-item set every setting costs",
        "  MRR@10 through the relevance-term effect above.",
    ]
    return "\n".join(md)


if __name__ == "__main__":
    main()
