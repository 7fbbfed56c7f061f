"""LanceDB as a benchmark peer: bench/scale.py's synthetic points and queries in an embedded LanceDB
table on disk (no server), set up as LanceDB's documentation recommends, to compare the adsearch
engine (Qdrant Edge inside) with what a user would pick instead. Benchmark-only: engine/ and api/
never import LanceDB.

Table: one row per point: id, image (512 x float32), text (384 x float32, null for a point without
OCR text: LanceDB leaves null vectors out of vector search, so such a point is absent from the text
channel, as in adsearch; a zero vector has no cosine direction), ocr_text (full-text column), and
the payload fields folder and file_date (stored, not searched here).

Indexes (docs.lancedb.com/indexing/vector-index, "Choose the Right Index" and "Index Tuning"):
- image, text: IVF_HNSW_SQ, cosine: the docs' "best recall/latency trade-off" (IVF_PQ is their pick
  for dimension <= 256, ours are 512 and 384; IVF_RQ for maximum compression), and the nearest to
  adsearch's own layout (HNSW over 8-bit vectors). num_partitions: num_rows // 1,048,576, at least
  1 (one HNSW graph per ~1M rows; the HnswSq docstring: "Setting this to 1 works well for most
  tables"); ef_construction 150, the page's starting value (the API's default is 300); m 20.
- ocr_text: the native (Lance) BM25 index, default tokenizer (simple, lower case, English stemming
  and stop words, ASCII folding): docs.lancedb.com/indexing/fts-index.

Search: the image vector search, the text vector search and the full-text search, each `depth`
deep with row ids, fused by RRFReranker (K = 60, its default) with rerank_multivector, the docs'
way to fuse several searches (docs.lancedb.com/reranking, "Multi-vector reranking"; hybrid queries
take one vector column only); the three searches run one after another. Fast path: nprobes left to
LanceDB's auto-tuning and ef = 1.5 x depth (vector-index page: for IVF_HNSW_SQ "keep the auto-tuned
nprobes, then tune ef first", ef "start around 1.5 * k"; also the API's default), no refine_factor
(the docs tie it to IVF_PQ, though it does re-rank IVF_HNSW_SQ candidates with the float32 vectors,
as adsearch rescores its int8 ones: --refine-factor 2). Exact path: bypass_vector_index(), a flat
scan (the docs' way to measure recall); full-text search is the same in both. The query text goes
in as a MatchQuery (terms, OR): a plain string is parsed, and one in double quotes becomes a phrase
query, which an index without positions refuses.

    .venv/bin/python -m bench.peers.lancedb_peer --points 20000 --queries 100 --folder /tmp/lance-smoke
    .venv/bin/python -m bench.peers.lancedb_peer --points 0 --quality   # text-only hybrid, 377 real ads
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import FTS, HnswSq
from lancedb.query import MatchQuery
from lancedb.rerankers import RRFReranker

from bench.common import ADS377, percentiles
from bench.scale import DIMS, proc_status
from engine.store import PointData

TABLE = "ads"
WARMUP = 10
ROWS_PER_HNSW_PARTITION = 1_048_576  # docs: HNSW-backed IVF num_partitions = num_rows // 1,048,576
EF_CONSTRUCTION = 150  # docs: "start at 150"
EF_FACTOR = 1.5  # docs: ef "start around 1.5 * k"

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("image", pa.list_(pa.float32(), DIMS["image"])),
        pa.field("text", pa.list_(pa.float32(), DIMS["text"])),  # null: no OCR text
        pa.field("ocr_text", pa.string()),
        pa.field("folder", pa.string()),
        pa.field("file_date", pa.timestamp("s", tz="UTC")),
    ]
)


def _vectors(rows: list, dim: int) -> pa.FixedSizeListArray:
    """Vectors as a fixed-size list column; a missing one (None) is null."""
    flat = np.zeros((len(rows), dim), np.float32)
    present = [i for i, row in enumerate(rows) if row is not None]
    if present:
        flat[present] = np.asarray([rows[i] for i in present], np.float32)
    mask = None if len(present) == len(rows) else pa.array([row is None for row in rows])
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), dim, mask=mask)


def record_batch(points: list[PointData]) -> pa.RecordBatch:
    """Points as rows of the table."""
    dates = [datetime.fromisoformat(d) if (d := p.payload.get("file_date")) else None for p in points]
    columns = [
        pa.array([p.id for p in points], pa.string()),
        _vectors([p.vectors.get("image") for p in points], DIMS["image"]),
        _vectors([p.vectors.get("text") for p in points], DIMS["text"]),
        pa.array([p.payload.get("ocr_text", "") for p in points], pa.string()),
        pa.array([p.payload.get("folder") for p in points], pa.string()),
        pa.array(dates, pa.timestamp("s", tz="UTC")),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def disk_mib(folder: Path) -> float:
    """MiB allocated on disk under `folder`."""
    blocks = sum(
        os.stat(os.path.join(root, f)).st_blocks for root, _, files in os.walk(folder) for f in files
    )
    return round(blocks * 512 / 2**20, 1)


class LancePeer:
    """LanceDB table in `folder` holding the same points as the adsearch store."""

    def __init__(self, folder: Path, ef_factor: float = EF_FACTOR, refine_factor: int | None = None):
        self.folder = Path(folder)
        self.db = lancedb.connect(self.folder)
        self.table = self.db.open_table(TABLE) if TABLE in self.db.list_tables().tables else None
        self.reranker = RRFReranker()  # K = 60, its default
        self.ef_factor, self.refine_factor = ef_factor, refine_factor

    def build(self, batches: Iterable[list[PointData]], n: int) -> dict:
        """Write the points (one streamed write: a table made from a reader of record batches, one
        version, no small fragments), then the vector indexes and the full-text index; seconds of
        each (the synthesis of the points not counted), rows, allocated MiB."""
        generate_s = 0.0

        def record_batches():
            nonlocal generate_s
            source = iter(batches)
            while True:
                t0 = time.perf_counter()
                points = next(source, None)
                generate_s += time.perf_counter() - t0
                if points is None:
                    return
                yield record_batch(points)

        t0 = time.perf_counter()
        reader = pa.RecordBatchReader.from_batches(SCHEMA, record_batches())
        self.db.drop_table(TABLE, ignore_missing=True)
        # on_bad_vectors="null": LanceDB's check counts a null vector as one of the wrong length and
        # refuses the write unless told to keep it null
        self.table = self.db.create_table(TABLE, data=reader, on_bad_vectors="null")
        write_s = time.perf_counter() - t0 - generate_s
        partitions = max(1, round(n / ROWS_PER_HNSW_PARTITION))
        index_s = {}
        for column in ("image", "text"):
            t0 = time.perf_counter()
            config = HnswSq(
                distance_type="cosine", num_partitions=partitions, ef_construction=EF_CONSTRUCTION
            )
            self.table.create_index(column, config=config)
            index_s[column] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        # the native (Lance) BM25 index, the only kind in lancedb 0.40; create_index(config=FTS()) is
        # create_fts_index("ocr_text", use_tantivy=False), which 0.40 deprecates
        self.table.create_index("ocr_text", config=FTS())
        index_s["ocr_text"] = round(time.perf_counter() - t0, 2)
        index_s["total"] = round(sum(index_s.values()), 2)
        unindexed = {i.name: i.num_unindexed_rows for i in self.table.list_indices()}
        return {
            "rows": self.table.count_rows(),
            "write_s": round(write_s, 2),
            "generate_s": round(generate_s, 2),
            "index_s": index_s,
            "num_partitions": partitions,
            "unindexed_rows": unindexed,
            "disk_mib": disk_mib(self.folder),
        }

    def search(
        self,
        image: np.ndarray,
        text: np.ndarray | None,
        query_text: str,
        k: int = 10,
        exact: bool = False,
        depth: int = 100,
    ) -> list[str]:
        """Hybrid top k ids: image vector, text vector and full-text searches (`depth` deep), fused
        by RRF; `exact`: flat vector search (the vector index bypassed)."""
        lists = [self._vector("image", image, exact, depth)]
        if text is not None:
            lists.append(self._vector("text", text, exact, depth))
        if query_text.strip():
            fts = self.table.search(MatchQuery(query_text, "ocr_text"), query_type="fts")
            lists.append(fts.select(["id", "_score"]).with_row_id(True).limit(depth).to_arrow())
        lists = [found for found in lists if found.num_rows]  # an empty result may lack _rowid
        if not lists:
            return []
        return self.reranker.rerank_multivector(lists)["id"].to_pylist()[:k]

    def _vector(self, column: str, vector: np.ndarray, exact: bool, depth: int) -> pa.Table:
        query = self.table.search(np.asarray(vector, np.float32), vector_column_name=column)
        query = query.distance_type("cosine").select(["id", "_distance"]).with_row_id(True).limit(depth)
        if exact:
            query = query.bypass_vector_index()
        else:
            # the graph search fetches depth x refine_factor candidates, and ef must be at least that
            query = query.ef(int(self.ef_factor * depth * (self.refine_factor or 1)))
            if self.refine_factor:
                query = query.refine_factor(self.refine_factor)
        return query.to_arrow()


def quality_ads377(source: list[PointData] | None = None, depth: int = 100) -> dict[str, dict]:
    """LanceDB's documented hybrid query (one vector column, text, plus full-text search on
    ocr_text, RRFReranker) on the 377 real ads, scored as bench/fusion.py scores adsearch: its
    query sets, qrels and metrics. The sub-searches are `depth` deep (adsearch fuses 100 per
    channel), the top 10 is scored. No vector index: 377 rows are searched flat."""
    from bench.fusion import METRICS, load_sets
    from bench.scale import source_points
    from engine.models.encoders import DenseTextEncoder
    from engine.settings import Settings

    if source is None:
        source, _ = source_points()
    settings = Settings()
    encoder = DenseTextEncoder(settings.text_model, settings.text_precision, settings.onnx_cache())
    root = ADS377 / "images"
    keys = {
        p.id: Path(p.payload["paths"][0]).relative_to(root).as_posix()
        for p in source
        if p.payload.get("paths")
    }
    reranker = RRFReranker()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = pa.Table.from_batches([record_batch(source)])
        table = lancedb.connect(tmp).create_table("ads377", data=data, on_bad_vectors="null")
        table.create_index("ocr_text", config=FTS())
        for name, (queries, qrels, metric) in load_sets().items():
            values = []
            for qid, text in queries.items():
                query = table.search(query_type="hybrid", vector_column_name="text", fts_columns="ocr_text")
                vector = encoder.encode([text])[0]
                query = query.vector(vector).text(MatchQuery(text, "ocr_text")).distance_type("cosine")
                ids = query.rerank(reranker).limit(depth).to_arrow()["id"].to_pylist()
                values.append(METRICS[metric]([keys[i] for i in ids[:10] if i in keys], qrels[qid]))
            out[name] = {"metric": metric, "value": round(float(np.mean(values)), 4), "queries": len(values)}
    return out


def smoke(args) -> dict:
    """Build `args.points` points, then time the fast path and measure its recall against exact."""
    from bench.query import mixed_queries
    from bench.scale import Synthesiser, source_points

    source, _ = source_points()
    synth = Synthesiser(source, args.vectors)
    rss = {"before_build": proc_status()}  # Python, the engine's modules, the synthesiser
    peer = LancePeer(args.folder, ef_factor=args.ef_factor, refine_factor=args.refine_factor)
    print(f"--- building {args.points:,} points in {args.folder}", flush=True)
    built = peer.build(synth.batches(args.points, 256, seed=args.seed), args.points)
    rss["after_build"] = proc_status()
    print(f"  build {json.dumps(built)}", flush=True)
    rng = np.random.default_rng(args.seed + 1)
    queries = [
        (synth.image_model.sample(rng, 1)[0], synth.text_model.sample(rng, 1)[0], text)
        for text in mixed_queries(source, args.queries + WARMUP)
    ]
    for query in queries[:WARMUP]:
        peer.search(*query, depth=args.depth)
    queries = queries[WARMUP:]
    timed = {}
    results = {}
    for exact in (False, True):
        ms, found = [], []
        for query in queries:
            t0 = time.perf_counter()
            found.append(peer.search(*query, exact=exact, depth=args.depth))
            ms.append((time.perf_counter() - t0) * 1000)
        timed[exact], results[exact] = percentiles(ms), found
    recall = [
        len(set(a) & set(b)) / max(1, min(10, len(b)))
        for a, b in zip(results[False], results[True], strict=True)
    ]
    rss["after_queries"] = proc_status()
    return {
        "points": args.points,
        "queries": len(queries),
        "depth": args.depth,
        "ef": int(args.ef_factor * args.depth * (args.refine_factor or 1)),
        "refine_factor": args.refine_factor,
        "build": built,
        "fast_ms": timed[False],
        "exact_ms": timed[True],
        "recall@10_vs_exact": round(float(np.mean(recall)), 4),
        "rss_mib": rss,  # VmRSS (rss), VmHWM (peak), RssAnon, RssFile
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000, help="0: no build (with --quality)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "lance-smoke")
    parser.add_argument("--depth", type=int, default=100, help="each search's depth before fusion")
    parser.add_argument("--vectors", choices=("gauss", "copies", "random"), default="gauss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ef-factor", type=float, default=EF_FACTOR, help="HNSW ef as a multiple of depth")
    parser.add_argument("--refine-factor", type=int, help="re-rank depth x this with the float32 vectors")
    parser.add_argument("--quality", action="store_true", help="also the text-only hybrid on the 377 ads")
    args = parser.parse_args(argv)
    if args.points:
        figures = smoke(args)
        rss = figures["rss_mib"]["after_queries"]
        print(json.dumps(figures, indent=2))
        print(f"fast path p50 {figures['fast_ms']['p50']} ms, p99 {figures['fast_ms']['p99']} ms (exact p50 "
              f"{figures['exact_ms']['p50']} ms, p99 {figures['exact_ms']['p99']} ms); recall@10 of the fused "
              f"top 10 vs exact {figures['recall@10_vs_exact']}; VmRSS {rss['rss']} MiB, VmHWM {rss['peak']} MiB; "
              f"build: write {figures['build']['write_s']} s, indexes {figures['build']['index_s']} s, "
              f"disk {figures['build']['disk_mib']} MiB", flush=True)  # fmt: skip
    if args.quality:
        print("--- text-only hybrid on ads377", flush=True)
        print(json.dumps(quality_ads377(depth=args.depth), indent=2))


if __name__ == "__main__":
    main()
