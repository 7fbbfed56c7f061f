"""A million ads on one machine: the embedded store (Qdrant Edge) at N points with the real schema,
built, measured on disk, and served by a fresh process.

What is real and what is synthesised (there are no million real ads here):
- payloads: real ads377 payloads (bench/.work/ads377-db: word boxes, OCR text, pipeline record...),
  one drawn per point, each with its own sha256 and path; `ingested_at` in ingest order,
  `file_date` and `folder` (1,000 folders) drawn. Payload indexes: the ones ingest makes (every
  built-in field but has_text), made after the points are written, as restore and migrate do
  (engine.store.bulk: Qdrant's bulk-load order).
- text vectors (MiniLM, 384-d): the real encoder's vectors of 49k real ad texts (the Pitt
  annotators' action-reason statements and slogans, the OCR text of the ads377 ads and of the
  Pitt ads with OCR; the benchmark's queries left out), encoded once and kept in bench/.work; each
  point is a blend of two of them, a * p + (1 - a) * q with a ~ U(0.5, 1), normalised (an ad's
  OCR text mixes lines: brand, slogan, offer).
- image vectors (CLIP, 512-d): no real CLIP weights here, and a random-weight ViT-B/32 gives
  near-identical vectors (mean pairwise cosine 0.89, unlike real CLIP); so, an assumption: blends
  of the same real text vectors, rotated into 512 dimensions (the 128 extra get a little noise).
- keywords (BM25, sparse): the drawn ad's real vector, weights scaled by U(0.7, 1.3), 15% of the
  terms dropped. creative (99-d): random pHash bits + DCT part, shaped as engine.models.creative's.
- queries: bench/query.py's 500 distinct real queries (half known-item statements, half 1-3 word
  OCR snippets) through the engine's real path, `Searcher.search` on the store `adsearch serve`
  would open (hybrid: three channel queries, one Qdrant batch, RRF), encoders included: MiniLM and
  BM25 as they are; the int8 CLIP text tower (random ViT-B/32 weights) runs for its time, but its
  output is swapped for a draw from the image model (the random tower's outputs all point one way).
- `--vectors gauss` draws both dense vectors from a Gaussian fitted to the 371 real ads377 text
  vectors instead (full local dimension, as hard for an index as random vectors), `copies` uses
  bench/query.py's noisy copies of the 377 real points, `random` isotropic Gaussians.

Measured: build (engine.store.bulk: write every point, then the payload indexes, then `optimize`:
HNSW graphs, int8 vectors, segment merges), disk by component, then a fresh process (`--serve`) that
loads the encoders, opens the store, reads ahead what `adsearch serve` reads in the background, runs
the queries and reports its own RSS (current, peak, anonymous vs file-backed), latency p50/p99 with
encoding, and recall@10 of the fast path (HNSW on the int8 vectors, rescored) against exact float32
search (every vector compared, quantisation ignored) on the same query vectors: the fused top 10 and
each dense channel's top 10; then a sweep of oversampling / hnsw_ef / float32 search on 200 queries
(`--no-sweep` skips it); then the LanceDB peer on the same points and query vectors
(bench/peers/lancedb_peer.py, `pip install -e '.[bench]'`; `--no-peer` skips it); then `adsearch
serve` on the same store over HTTP: time to its first answer, to the end of its warm-up, its
latency (`--no-http` skips it).

    .venv/bin/python -m bench.scale --points 1000000     # the issue's target: ~1 h here (estimate)
    .venv/bin/python -m bench.scale --points 100000      # ~6 min (+10 the first time: encoding
                                                         # the text pool, kept in bench/.work)
    .venv/bin/python -m bench.scale --points 20000 --no-http --no-sweep   # a smoke test

The built store stays in bench/.work/scale-N-...-db and is reused by the next run of the same
size and layout (`--rebuild` to build again, `--drop` to delete it after the run). Results merge
into bench/results/scale.json by size and layout; scale.md shows every run, the largest first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.common import ADS377, RESULTS, WORK, percentiles, write_results
from engine.store import EdgeStore, PointData, SparseVec, open_store, point_id
from engine.store.base import HNSW_EF_CONSTRUCT, HNSW_M
from engine.store.bulk import BULK_BATCH, BulkLoad
from engine.store.warm import read_ahead

DIMS = {"image": 512, "text": 384, "creative": 99}
QUERIES = 500
SWEEP_QUERIES = 200
WARMUP = 10
FOLDERS = 1000
SOURCE_DB = WORK / "ads377-db"
DISTRIBUTED_MARK = "## Distributed ingest"  # scale.md from here on belongs to the distributed bench


# ---------------------------------------------------------------------------------- status


def proc_status(pid: int | str = "self") -> dict[str, float]:
    """Resident memory of a process, MiB: rss (VmRSS), peak (VmHWM), anon (RssAnon: its own heap),
    file (RssFile: mapped files now in RAM, page cache the kernel can drop)."""
    text = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    names = {"rss": "VmRSS", "peak": "VmHWM", "anon": "RssAnon", "file": "RssFile"}
    return {k: round(int(fields[f].split()[0]) / 1024, 1) for k, f in names.items() if f in fields}


# ---------------------------------------------------------------------------------- synthesis


class VectorModel:
    """A Gaussian with the mean and covariance of real vectors (plus a small isotropic part),
    optionally rotated into more dimensions; draws are normalised."""

    def __init__(self, real: np.ndarray, dim: int | None = None, seed: int = 0):
        real = real / np.linalg.norm(real, axis=1, keepdims=True)
        self.mean = real.mean(axis=0)
        centred = real - self.mean
        self.basis = centred / np.sqrt(len(real) - 1)  # z = mean + basis.T @ g has the sample covariance
        eig = np.linalg.svd(centred, compute_uv=False) ** 2 / (len(real) - 1)
        eig = eig[eig > 1e-9]
        self.iso = float(np.sqrt(eig[-max(1, len(eig) // 10) :].mean()))  # the weakest tenth of the spectrum
        self.source_dim = real.shape[1]
        self.dim = dim or self.source_dim
        rng = np.random.default_rng(seed)
        self.rotation = None
        if self.dim != self.source_dim:
            q, _ = np.linalg.qr(rng.normal(size=(self.dim, self.dim)))
            self.rotation = q.astype(np.float32)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        g = rng.normal(size=(n, len(self.basis))).astype(np.float32)
        z = self.mean + g @ self.basis + rng.normal(scale=self.iso, size=(n, self.source_dim))
        if self.rotation is not None:
            extra = rng.normal(scale=self.iso, size=(n, self.dim - self.source_dim))
            z = np.concatenate([z, extra], axis=1) @ self.rotation
        z = z.astype(np.float32)
        return z / np.linalg.norm(z, axis=1, keepdims=True)


class PoolModel:
    """Blends of two real vectors: a * p + (1 - a) * q, a ~ U(0.5, 1), from a pool of real encoder
    outputs, optionally rotated into more dimensions (the extra ones get a little noise); normalised.
    An ad's OCR text mixes lines (brand, slogan, offer): a blend of two texts' vectors stands in for
    one, and keeps the real encoder's geometry."""

    def __init__(self, pool: np.ndarray, dim: int | None = None, seed: int = 0):
        self.pool = (pool / np.linalg.norm(pool, axis=1, keepdims=True)).astype(np.float32)
        self.source_dim = pool.shape[1]
        self.dim = dim or self.source_dim
        self.rotation = None
        if self.dim != self.source_dim:
            q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(self.dim, self.dim)))
            self.rotation = q.astype(np.float32)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        a, b = rng.integers(0, len(self.pool), size=(2, n))
        share = rng.uniform(0.5, 1.0, size=(n, 1)).astype(np.float32)
        z = share * self.pool[a] + (1 - share) * self.pool[b]
        if self.rotation is not None:
            extra = rng.normal(scale=0.02, size=(n, self.dim - self.source_dim)).astype(np.float32)
            z = np.concatenate([z, extra], axis=1) @ self.rotation
        return z / np.linalg.norm(z, axis=1, keepdims=True)


PITT = ADS377.parent / "pitt_ads"


def pool_texts(source: list[PointData], exclude: set[str]) -> list[str]:
    """Real ad texts: the Pitt annotators' action-reason statements and slogans, the OCR text of the
    ads377 ads and of the Pitt ads with OCR; distinct, queries left out."""
    import csv

    texts = [p.payload.get("ocr_text", "") for p in source]
    right = PITT / "dmg-illc_trade" / "test_right.json"
    if right.exists():
        texts += [t for statements in json.loads(right.read_text()).values() for t in statements]
    for name in ("Slogans_train.json", "Slogans_test.json"):
        path = PITT / "midas-research_persuasion-advertisements" / name
        if path.exists():
            texts += [t for slogans in json.loads(path.read_text()).values() for t in slogans]
    ocr = PITT / "dmg-illc_trade" / "dist_w_ocr.csv"
    if ocr.exists():
        with ocr.open(newline="") as handle:
            texts += [row["text"] for row in csv.DictReader(handle)]
    texts = [" ".join(t.split()) for t in texts if isinstance(t, str)]
    return sorted({t for t in texts if len(t) >= 8 and t not in exclude})


def text_pool(source: list[PointData], exclude: set[str]) -> Path:
    """The file of MiniLM vectors of `pool_texts`, encoded once and kept in bench/.work."""
    from engine.models.encoders import DenseTextEncoder
    from engine.settings import Settings

    texts = pool_texts(source, exclude)
    settings = Settings()
    key = hashlib.sha256(("\n".join(texts) + settings.text_model).encode()).hexdigest()[:12]
    cache = WORK / f"scale-text-pool-{key}.npy"
    if cache.exists():
        return cache
    print(f"  encoding {len(texts):,} real ad texts with {settings.text_model} (once, kept in {cache.name})",
          flush=True)  # fmt: skip
    encoder = DenseTextEncoder(settings.text_model, settings.text_precision, settings.onnx_cache())
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # batches of like length: less padding
    vectors = np.zeros((len(texts), encoder.encode(texts[:1]).shape[1]), np.float32)
    for start in range(0, len(order), 64):
        chunk = order[start : start + 64]
        vectors[chunk] = encoder.encode([texts[i] for i in chunk])
    WORK.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors.astype(np.float32))
    return cache


class Synthesiser:
    """Points in the real schema from the ads377 points (see the module docstring)."""

    def __init__(self, source: list[PointData], kind: str, seed: int = 0, pool: np.ndarray | None = None):
        self.source, self.kind = source, kind
        self.has_text = np.array(["text" in p.vectors for p in source])
        text = np.array([p.vectors["text"] for p in source if "text" in p.vectors], np.float32)
        if kind == "pool":
            self.text_model = PoolModel(pool, seed=seed)
            self.image_model = PoolModel(pool, dim=DIMS["image"], seed=seed + 1)
        else:
            self.text_model = VectorModel(text, seed=seed)
            self.image_model = VectorModel(text, dim=DIMS["image"], seed=seed + 1)
        if kind == "copies":
            self.real = {c: np.array([p.vectors.get(c, np.zeros(DIMS[c])) for p in source], np.float32)
                         for c in ("image", "text")}  # fmt: skip
        freq = np.hypot(*np.meshgrid(np.arange(6), np.arange(6), indexing="ij")).ravel()[1:]
        self.dct_weight = freq.astype(np.float32)
        self.start = datetime(2026, 1, 1, tzinfo=UTC)

    def dense(self, rng: np.random.Generator, channel: str, parents: np.ndarray) -> np.ndarray:
        n = len(parents)
        if self.kind == "random":
            z = rng.normal(size=(n, DIMS[channel])).astype(np.float32)
            return z / np.linalg.norm(z, axis=1, keepdims=True)
        if self.kind == "copies":  # bench/query.py: cosine ~0.9 to the real point
            base = self.real[channel][parents]
            z = base + rng.normal(scale=0.48 / np.sqrt(DIMS[channel]), size=base.shape).astype(np.float32)
            return z / np.linalg.norm(z, axis=1, keepdims=True)
        return (self.image_model if channel == "image" else self.text_model).sample(rng, n)

    def creative(self, rng: np.random.Generator, n: int) -> np.ndarray:
        bits = np.sign(rng.normal(size=(n, 64))).astype(np.float32) / 8.0
        low = rng.normal(size=(n, 35)).astype(np.float32) * self.dct_weight
        low /= np.linalg.norm(low, axis=1, keepdims=True)
        return np.concatenate([bits, low], axis=1) / np.sqrt(2)

    def batches(self, n: int, batch: int, seed: int):
        """`n` points, `batch` at a time; point i is the same for every run with this seed."""
        rng = np.random.default_rng(seed)
        for start in range(0, n, batch):
            size = min(batch, n - start)
            parents = rng.integers(0, len(self.source), size=size)
            # lists, as ingest hands them over (a numpy row converts 4x slower in the binding)
            image = self.dense(rng, "image", parents).tolist()
            text = self.dense(rng, "text", parents).tolist()
            creative = self.creative(rng, size).tolist()
            days = rng.integers(0, 3650, size=size)
            folders = rng.integers(0, FOLDERS, size=size)
            points = []
            for j in range(size):
                i = start + j
                src = self.source[parents[j]]
                vectors: dict = {"image": image[j], "creative": creative[j]}
                if "text" in src.vectors:
                    vectors["text"] = text[j]
                    vectors["keywords"] = _jitter(src.vectors["keywords"], rng)
                sha = hashlib.sha256(f"scale-{seed}-{i}".encode()).hexdigest()
                payload = {
                    **src.payload,
                    "sha256": sha,
                    "paths": [f"/ads/{folders[j]:04d}/{i}.jpg"],
                    "folder": f"{folders[j]:04d}",
                    "file_date": (self.start - timedelta(days=int(days[j]))).isoformat(timespec="seconds"),
                    "ingested_at": (self.start + timedelta(seconds=i // 4)).isoformat(timespec="seconds"),
                }
                points.append(PointData(point_id(sha), vectors, payload))
            yield points


def _jitter(vector: SparseVec, rng: np.random.Generator) -> SparseVec:
    if not vector.indices:
        return vector
    keep = rng.random(len(vector.indices)) >= 0.15
    keep[0] = True
    scale = rng.uniform(0.7, 1.3, size=len(vector.indices))
    idx = np.asarray(vector.indices)[keep]
    val = (np.asarray(vector.values) * scale)[keep]
    return SparseVec(idx.tolist(), val.tolist())


def source_points() -> tuple[list[PointData], dict]:
    if not SOURCE_DB.exists():
        raise SystemExit("run `python -m bench.ingest` first: it builds the ads377 collection")
    with EdgeStore(SOURCE_DB, "ads") as store:
        return list(store.points()), store.metadata()


# ---------------------------------------------------------------------------------- build


def index_fields() -> dict[str, str]:
    """The payload indexes ingest makes: every built-in field a filter can name but has_text."""
    from engine.filters import BUILTIN_FIELDS

    return {k: v for k, v in BUILTIN_FIELDS.items() if k != "has_text"}


def build(db: Path, n: int, args, source, meta, pool: np.ndarray | None) -> dict:
    """Fill a new store with `n` synthesised points as a bulk load does (engine.store.bulk: every
    point, then the payload indexes, then the graphs); seconds of each step."""
    shutil.rmtree(db, ignore_errors=True)
    synth = Synthesiser(source, args.vectors, pool=pool)
    store = EdgeStore(db, "ads", quantize=not args.no_quantize)
    store.m, store.ef_construct = args.m, args.ef_construct  # the graphs' links and build beam
    store.ensure_collection(DIMS)
    load = BulkLoad(store)
    generate_s = 0.0
    started = time.perf_counter()
    report_at = step = max(args.batch, n // 20)
    for points in _timed(synth.batches(n, args.batch, seed=args.seed)):
        generate_s += points.seconds
        load.write(points.value)
        if load.points >= report_at or load.points == n:
            print(f"  wrote {load.points:,}/{n:,} ({load.points / load.write_s:,.0f} points/s in the store; "
                  f"{time.perf_counter() - started:,.0f} s so far)", flush=True)  # fmt: skip
            report_at += step
    print("  payload indexes, then optimize (HNSW graphs, int8 vectors, segment merges) ...", flush=True)
    load.finish(index_fields())
    info = store.shard.info()
    done = load.figures()
    figures = {
        "points": n,
        "vectors": args.vectors,
        "quantized": not args.no_quantize,
        "ef_construct": args.ef_construct,
        "m": args.m,
        "batch": args.batch,
        "generate_s": round(generate_s, 1),
        "upsert_s": done["write_s"],
        "payload_index_s": done["payload_index_s"],
        "optimize_s": done["optimize_s"],
        "build_s": round(done["write_s"] + done["payload_index_s"] + done["optimize_s"], 1),
        "upsert_points_per_s": done["write_points_per_s"],
        "segments": info.segments_count,
        "indexed_vectors": info.indexed_vectors_count,
        "builder_peak_rss_mib": proc_status()["peak"],
    }
    keep = {k: v for k, v in meta.items() if k not in ("dims", "quantization")}
    store.update_metadata({**keep, "fields": {}, "scale_build": figures})
    store.close()
    print(f"  built in {figures['build_s']:,} s (write {figures['upsert_s']:,} s, payload indexes "
          f"{figures['payload_index_s']:,} s, optimize {figures['optimize_s']:,} s)", flush=True)  # fmt: skip
    return figures


@dataclass
class _Timed:
    value: object
    seconds: float


def _timed(items):
    """Each item of an iterator with the seconds it took to make."""
    iterator = iter(items)
    while True:
        start = time.perf_counter()
        item = next(iterator, None)
        if item is None:
            return
        yield _Timed(item, time.perf_counter() - start)


COMPONENTS = [  # (directory or file name prefix inside a segment, component)
    ("vector_storage-keywords", "sparse vectors"),
    ("vector_index-keywords", "sparse index"),
    ("vector_storage-", "dense vectors, float32"),
    ("vector_index-", "HNSW graphs"),
    ("payload_storage", "payload"),
    ("payload_index", "payload indexes"),
    ("id_tracker", "id tracker"),
    ("mutable_id_tracker", "id tracker"),
]


def disk_usage(db: Path) -> dict[str, float]:
    """MiB allocated on disk by component (int8 copies split out of the dense vector folders);
    Qdrant preallocates sparse files, whose apparent size is larger."""
    out: dict[str, float] = defaultdict(float)
    for root, _, files in os.walk(db):
        rel = Path(root).relative_to(db).parts
        for name in files:
            size = os.stat(os.path.join(root, name)).st_blocks * 512 / 2**20  # allocated, not apparent
            inside = rel[rel.index("segments") + 2 :] if "segments" in rel else None  # below <segment>/
            if "wal" in rel:
                part = "write-ahead log"
            elif ".sidecar.sqlite" in name:
                part = "heavy fields (sidecar)"
            elif inside is None:
                part = "other"
            else:
                where = inside[0] if inside else name
                part = next((c for prefix, c in COMPONENTS if where.startswith(prefix)), "other")
                if part == "dense vectors, float32" and name.startswith("quantized"):
                    part = "dense vectors, int8"
            out[part] += size
    result = {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}
    result["total"] = round(sum(out.values()), 1)
    return result


# ---------------------------------------------------------------------------------- serve (child)


class SyntheticImageQueries:
    """The CLIP encoder, timed as it is, whose text vectors are swapped for draws from the image
    model (seeded by the query text: one query, one vector)."""

    def __init__(self, clip, model: VectorModel):
        self._clip, self._model = clip, model

    def __getattr__(self, name):
        return getattr(self._clip, name)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self._clip.encode_texts(texts)
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
        return np.concatenate([self._model.sample(np.random.default_rng(s), 1) for s in seeds])


def serve(args) -> None:
    """The `--serve` child: a fresh process opening the store, serving the queries, measuring itself."""
    from bench.ingest import random_vit_b_32
    from engine.models.encoders import load_encoders
    from engine.search import Searcher
    from engine.settings import Settings

    spec = json.loads(Path(args.serve_spec).read_text())
    out: dict = {"rss_mib": {"start": proc_status()}}
    settings = Settings(db=Path(args.serve), clip_model=str(random_vit_b_32()))
    encoders = load_encoders(settings, quiet=True)
    out["rss_mib"]["encoders_loaded"] = proc_status()
    t0 = time.perf_counter()
    store = open_store(settings)  # as `adsearch serve` opens it (quantisation, hnsw_ef from settings)
    store.count()
    out["open_s"] = round(time.perf_counter() - t0, 2)
    out["rss_mib"]["store_opened"] = proc_status()
    t0 = time.perf_counter()  # what `adsearch serve` reads ahead in the background after opening
    out["warm_mib"] = round(read_ahead(store.warm_files()) / 2**20, 1)
    out["warm_s"] = round(time.perf_counter() - t0, 2)
    if spec["vectors"] != "copies" and encoders.clip is not None:
        source, _ = source_points()
        pool = np.load(spec["pool"]) if spec.get("pool") else None
        image_model = Synthesiser(source, spec["vectors"], pool=pool).image_model
        encoders.clip = SyntheticImageQueries(encoders.clip, image_model)
    searcher = Searcher(settings, encoders, store)
    channels = searcher.channels_for("hybrid")
    for q in spec["warmup"]:
        searcher.search(q, k=10)
    total, stages = [], defaultdict(list)
    for q in spec["queries"]:
        t0 = time.perf_counter()
        response = searcher.search(q, k=10)
        total.append((time.perf_counter() - t0) * 1000)
        for stage, ms in response.timings_ms.items():
            stages[stage].append(ms)
    out["rss_mib"]["after_queries"] = proc_status()
    out["engine_ms"] = percentiles(total)
    out["stages_ms"] = {s: percentiles(v) for s, v in stages.items()}
    out["channels"] = channels
    print(f"  engine p50 {out['engine_ms']['p50']} ms, p99 {out['engine_ms']['p99']} ms; "
          f"RSS {out['rss_mib']['after_queries']}", flush=True)  # fmt: skip

    # recall: the same query vectors (cached by the searcher) through the fast path and exactly
    weights = [settings.weights.get(c, 1.0) for c in channels]
    call = {"weights": weights, "limit": 10, "offset": 0, "prefetch_limit": settings.prefetch_limit,
            "rrf_k": settings.rrf_k}  # fmt: skip
    vectors = [searcher.query_encoder.embed(channels, q, None, {}) for q in spec["queries"]]
    save_query_vectors(Path(args.serve_out).with_suffix(".npz"), vectors)
    fast_ms, exact_ms = [], []
    found = defaultdict(list)
    results = []
    for qs in vectors:
        w = [weights[channels.index(q.channel)] for q in qs]
        t0 = time.perf_counter()
        fast = store.search(qs, **{**call, "weights": w})
        fast_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        exact = store.search(qs, **{**call, "weights": w, "prefetch_limit": REFERENCE_DEPTH}, exact=True)
        exact_ms.append((time.perf_counter() - t0) * 1000)
        results.append((qs, w, exact))
        for name, a, b in _rankings(fast, exact):
            found[name].append(len(set(a) & set(b)) / max(1, min(10, len(b))))
    out["store_ms"] = percentiles(fast_ms)
    out["exact_store_ms"] = percentiles(exact_ms)
    out["recall@10_vs_exact"] = {k: round(float(np.mean(v)), 4) for k, v in found.items()}
    print(f"  recall@10 vs exact {out['recall@10_vs_exact']}; store p50 {out['store_ms']['p50']} ms "
          f"(exact {out['exact_store_ms']['p50']} ms)", flush=True)  # fmt: skip
    if spec.get("sweep"):
        out["sweep"] = sweep(store, results[:SWEEP_QUERIES], call)
    store.close()
    Path(args.serve_out).write_text(json.dumps(out))


def _rankings(fast, exact):
    """(name, fast ids, exact ids): the fused top 10 and each dense channel's top 10."""
    yield "fused", [h.id for h in fast.fused[:10]], [h.id for h in exact.fused[:10]]
    for channel in ("image", "text"):
        if channel in exact.per_channel:
            a = [h.id for h in fast.per_channel[channel][:10]]
            yield channel, a, [h.id for h in exact.per_channel[channel][:10]]


SWEEP = [  # (prefetch depth, oversampling, hnsw_ef, int8 vectors searched); "auto": Qdrant's own beam
    *[(depth, 2.0, ef, True) for depth in (20, 30, 50, 100) for ef in (256, 512, 1024)],
    (30, 2.0, 2048, True), (100, 2.0, 2048, True), (100, 2.0, "auto", True), (100, 1.0, 512, True),
    (100, None, 512, False), (100, None, 1024, False),
]  # fmt: skip
REFERENCE_DEPTH = 100  # recall is against the exact fused top 10 of channels ranked this deep


def sweep(store, results, call) -> list[dict]:
    """Store latency and recall of the fused top 10 for other prefetch depths, HNSW beams and
    oversampling factors, and without the int8 vectors (float32 HNSW search: what quantisation itself
    costs in recall)."""
    default = (call["prefetch_limit"], store.oversampling, store.hnsw_ef, store._params)
    rows = []
    for depth, oversampling, ef, quantised in SWEEP:
        store.oversampling = oversampling or default[1]
        store.hnsw_ef = None if ef == "auto" else ef
        store._params = default[3] if quantised else _float32_params(store)
        ms, found = [], defaultdict(list)
        for qs, w, exact in results:
            t0 = time.perf_counter()
            fast = store.search(qs, **{**call, "weights": w, "prefetch_limit": depth})
            ms.append((time.perf_counter() - t0) * 1000)
            for name, a, b in _rankings(fast, exact):
                found[name].append(len(set(a) & set(b)) / max(1, min(10, len(b))))
        row = {"prefetch_limit": depth, "oversampling": oversampling, "hnsw_ef": ef, "quantised": quantised,
               "default": (depth, oversampling, ef, quantised) == (*default[:3], True),
               "store_ms": percentiles(ms),
               "recall@10": {k: round(float(np.mean(v)), 4) for k, v in found.items()}}  # fmt: skip
        print(f"  sweep depth={depth} {'int8' if quantised else 'fp32'} oversampling={oversampling} ef={ef}: "
              f"p50 {row['store_ms']['p50']} ms, recall {row['recall@10']}", flush=True)  # fmt: skip
        rows.append(row)
    store.oversampling, store.hnsw_ef, store._params = default[1:]
    return rows


def _float32_params(store):
    """The store's search parameters with the int8 vectors ignored (HNSW on the float32 ones)."""
    qe, ef = store.qe, store.hnsw_ef

    def params(channel, exact):
        if channel == "keywords" or exact:
            return store.__class__._params(store, channel, exact)
        return qe.SearchParams(hnsw_ef=ef, quantization=qe.QuantizationSearchParams(ignore=True))

    return params


def save_query_vectors(path: Path, vectors) -> None:
    """Each query's image and text vectors as the engine encoded them (NaN rows: none), for the peer."""
    out = {}
    for channel in ("image", "text"):
        rows = np.full((len(vectors), DIMS[channel]), np.nan, np.float32)
        for i, qs in enumerate(vectors):
            found = [q.vector for q in qs if q.channel == channel]
            if found:
                rows[i] = found[0]
        out[channel] = rows
    np.savez(path, **out)


# ---------------------------------------------------------------------------------- peer (child)

PEER_SWEEP = [(1.5, None), (3.0, None), (1.5, 2)]  # (ef as a multiple of the depth, refine factor)


def peer(args) -> None:
    """The `--peer` child: the same points in LanceDB (bench/peers/lancedb_peer.py), built once and
    kept beside the store, searched with the same query texts and vectors; its own figures."""
    from bench.peers.lancedb_peer import LancePeer, quality_ads377

    spec = json.loads(Path(args.serve_spec).read_text())
    folder = Path(args.peer)
    table = LancePeer(folder)
    built = json.loads((folder / "build.json").read_text()) if (folder / "build.json").exists() else None
    if table.table is None or built is None or built.get("points") != spec["points"]:
        source, _ = source_points()
        pool = np.load(spec["pool"]) if spec.get("pool") else None
        synth = Synthesiser(source, spec["vectors"], pool=pool)
        print(f"--- LanceDB: building {spec['points']:,} points in {folder}", flush=True)
        built = {"points": spec["points"], **table.build(synth.batches(spec["points"], BULK_BATCH, seed=spec["seed"]),
                                                         spec["points"])}  # fmt: skip
        (folder / "build.json").write_text(json.dumps(built))
        table = LancePeer(folder)  # reopened, as a fresh process would
    out: dict = {"name": "lancedb", "version": _version("lancedb"), "build": built}
    vectors = np.load(spec["query_vectors"])
    queries = [(vectors["image"][i], None if np.isnan(vectors["text"][i][0]) else vectors["text"][i], text)
               for i, text in enumerate(spec["queries"])]  # fmt: skip
    depth = spec["depth"]
    for query in queries[:WARMUP]:
        table.search(*query, depth=depth)
    # two passes, as adsearch's store calls come after its engine pass over the same queries
    for key in ("first_pass_ms", "store_ms"):
        ms = []
        for query in queries:
            t0 = time.perf_counter()
            table.search(*query, depth=depth)
            ms.append((time.perf_counter() - t0) * 1000)
        out[key] = percentiles(ms)
    out["rss_mib"] = proc_status()
    print(f"  LanceDB p50 {out['store_ms']['p50']} ms, p99 {out['store_ms']['p99']} ms; RSS {out['rss_mib']}",
          flush=True)  # fmt: skip
    some = queries[:SWEEP_QUERIES]
    exact = [table.search(*q, exact=True, depth=depth) for q in some]
    out["sweep"] = []
    for ef_factor, refine in PEER_SWEEP:
        table.ef_factor, table.refine_factor = ef_factor, refine
        ms, recall = [], []
        for query, truth in zip(some, exact, strict=True):
            t0 = time.perf_counter()
            found = table.search(*query, depth=depth)
            ms.append((time.perf_counter() - t0) * 1000)
            recall.append(len(set(found) & set(truth)) / max(1, min(10, len(truth))))
        row = {"ef": int(ef_factor * depth * (refine or 1)), "refine_factor": refine,
               "default": (ef_factor, refine) == PEER_SWEEP[0], "store_ms": percentiles(ms),
               "recall@10": round(float(np.mean(recall)), 4)}  # fmt: skip
        print(f"  LanceDB ef {row['ef']} refine {refine}: p50 {row['store_ms']['p50']} ms, recall {row['recall@10']}",
              flush=True)  # fmt: skip
        out["sweep"].append(row)
    out["recall@10_vs_exact"] = out["sweep"][0]["recall@10"]
    out["quality_ads377"] = quality_ads377(depth=depth)
    Path(args.serve_out).write_text(json.dumps(out))


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


# ---------------------------------------------------------------------------------- HTTP


def time_http(db: Path, queries: list[str], warmup: list[str]) -> dict:
    """`adsearch serve` on the store: startup to first answer (opening a 1M store takes a while),
    each query's HTTP time, its memory."""
    from bench.api import free_port, search_times, start_server

    port = free_port()
    server, startup_s = start_server(port, warmup[0], db, timeout_s=1800)
    try:
        warm_s = _warm_seconds(port)
        ms = search_times(port, queries, warmup, timeout_s=120)
        memory = proc_status(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {"ms": percentiles(ms), "startup_s": round(startup_s, 2), "warm": warm_s, "rss_mib": memory}


def _warm_seconds(port: int, timeout_s: float = 600) -> dict:
    """The server's warm-up as /health reports it once done (files read ahead, encoders, a search)."""
    import httpx

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=30).json()
        if health["status"] != "warming":
            return health.get("warm") or {}
        time.sleep(0.2)
    return {"note": "still warming after the timeout"}


# ---------------------------------------------------------------------------------- main


def run(args) -> dict:
    from bench.query import mixed_queries

    load_start = [round(x, 2) for x in os.getloadavg()]
    source, meta = source_points()
    db = WORK / f"scale-{label(args)}-db"
    built = None
    if db.exists() and not args.rebuild:
        try:
            with EdgeStore(db, "ads") as store:
                built = store.metadata().get("scale_build")
        except Exception:  # noqa: BLE001 (an unreadable leftover is rebuilt)
            built = None
    queries = mixed_queries(source, args.queries + WARMUP)
    pool = text_pool(source, set(queries)) if args.vectors == "pool" else None
    if built is None:
        print(f"--- building {args.points:,} points ({label(args)}) in {db}", flush=True)
        built = build(db, args.points, args, source, meta, np.load(pool) if pool else None)
    else:
        print(f"--- reusing {db} (built in {built['build_s']} s; --rebuild to build again)", flush=True)
    disk = disk_usage(db)
    print(f"  disk {disk}", flush=True)
    warmup, queries = queries[-WARMUP:], queries[:-WARMUP]
    with tempfile.TemporaryDirectory() as tmp:
        spec, result = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec.write_text(json.dumps({"queries": queries, "warmup": warmup, "vectors": args.vectors,
                                    "sweep": not args.no_sweep, "pool": str(pool) if pool else None}))  # fmt: skip
        print("--- serving from a fresh process", flush=True)
        cmd = [sys.executable, "-m", "bench.scale", "--serve", str(db), "--serve-spec", str(spec),
               "--serve-out", str(result)]  # fmt: skip
        subprocess.run(cmd, check=True)
        served = json.loads(result.read_text())
        peers = (
            [] if args.no_peer else [run_peer(args, db, pool, queries, result.with_suffix(".npz"), Path(tmp))]
        )
    http = None
    if not args.no_http:
        print("--- adsearch serve over HTTP", flush=True)
        http = time_http(db, queries, warmup)
        print(f"  http {http}", flush=True)
    if args.drop:
        shutil.rmtree(db, ignore_errors=True)
    load = {"at_start": load_start, "at_end": [round(x, 2) for x in os.getloadavg()]}
    rss = served["rss_mib"]["after_queries"]
    engine = served["engine_ms"]
    return {
        "points": args.points,
        "vectors": args.vectors,
        "quantized": built["quantized"],
        "queries": len(queries),
        "engine": {"p50": engine["p50"], "p95": engine["p95"], "p99": engine["p99"], "mean": engine["mean"]},
        "stages_ms": served["stages_ms"],
        "store_ms": served["store_ms"],
        "exact_store_ms": served["exact_store_ms"],
        "http": http,
        "rss_mib": rss["rss"],
        "rss_detail_mib": served["rss_mib"],
        "store_open_s": served["open_s"],
        "warm_mib": served.get("warm_mib"),
        "warm_s": served.get("warm_s"),
        "build_s": built["build_s"],
        "build": built,
        "disk_mib": disk["total"],
        "disk_detail_mib": disk,
        "recall@10_vs_exact": served["recall@10_vs_exact"]["fused"],
        "recall@10_detail": served["recall@10_vs_exact"],
        "sweep": served.get("sweep"),
        "sweep_queries": min(SWEEP_QUERIES, len(queries)),
        "load_average": load,  # 1/5/15-minute load of the machine (2 cores): others' work shows here
        "peers": peers,
    }


def run_peer(args, db: Path, pool: Path | None, queries: list[str], vectors: Path, tmp: Path) -> dict:
    """The LanceDB peer in a fresh process, on the same points, query texts and query vectors."""
    from engine.settings import Settings

    spec, result = tmp / "peer-spec.json", tmp / "peer-result.json"
    spec.write_text(json.dumps({"points": args.points, "vectors": args.vectors, "seed": args.seed,
                                "pool": str(pool) if pool else None, "queries": queries,
                                "query_vectors": str(vectors), "depth": Settings().prefetch_limit}))  # fmt: skip
    print("--- the LanceDB peer, from a fresh process", flush=True)
    folder = db.with_name(db.name.removesuffix("-db") + "-lancedb")
    cmd = [sys.executable, "-m", "bench.scale", "--peer", str(folder), "--serve-spec", str(spec),
           "--serve-out", str(result)]  # fmt: skip
    subprocess.run(cmd, check=True)
    return json.loads(result.read_text())


def http_again(args) -> dict:
    """The last run of this size and layout with its HTTP figures measured again, from a process that
    holds nothing else (the full run's own process still holds what building took)."""
    from bench.query import mixed_queries

    wanted = (args.points, args.vectors, not args.no_quantize, args.m, args.ef_construct)
    size = next(s for s in json.loads((RESULTS / "scale.json").read_text())["sizes"] if variant(s) == wanted)
    source, _ = source_points()
    queries = mixed_queries(source, args.queries + WARMUP)
    print("--- adsearch serve over HTTP", flush=True)
    size["http"] = time_http(WORK / f"scale-{label(args)}-db", queries[:-WARMUP], queries[-WARMUP:])
    print(f"  http {size['http']}", flush=True)
    return size


def label(args) -> str:
    """Names a store built with these arguments (bench/.work/scale-LABEL-db)."""
    efc = "" if args.ef_construct == HNSW_EF_CONSTRUCT else f"-efc{args.ef_construct}"
    m = "" if args.m == HNSW_M else f"-m{args.m}"
    return f"{args.points}-{args.vectors}-{'fp32' if args.no_quantize else 'int8'}{m}{efc}"


def variant(s: dict) -> tuple:
    build = s.get("build", {})
    graph = (build.get("m", HNSW_M), build.get("ef_construct", HNSW_EF_CONSTRUCT))
    return (s["points"], s.get("vectors"), s.get("quantized"), *graph)


def merged(size: dict) -> dict:
    """scale.json with this size replacing an earlier run of the same size and layout; other keys
    (the distributed-ingest figures) kept."""
    path = RESULTS / "scale.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.pop("machine", None)
    sizes = [s for s in data.get("sizes", []) if variant(s) != variant(size)]
    data["sizes"] = sorted(
        [*sizes, size], key=lambda s: (-s["points"], s.get("vectors", ""), not s.get("quantized"))
    )
    return data


TARGETS = "hybrid p50 <= 30 ms, p99 <= 80 ms with encoding; recall@10 vs exact >= 0.98; RSS <= 4 GB; build <= 30 min"


def _markdown(paragraph: str) -> str:
    """A docstring paragraph as markdown: wrapped lines joined, "- " items kept as a list."""
    out: list[str] = []
    for line in paragraph.splitlines():
        if line.startswith("- "):
            out.append(("\n" if out and not out[-1].lstrip().startswith("- ") else "") + line)
        elif out:
            out[-1] += " " + line.strip()
        else:
            out.append(line.strip())
    return "\n".join(out)


def _layout(s: dict) -> str:
    build = s.get("build", {})
    efc, m = build.get("ef_construct", HNSW_EF_CONSTRUCT), build.get("m", HNSW_M)
    graph = f", HNSW m {m}, ef_construct {efc}" if (m, efc) != (HNSW_M, HNSW_EF_CONSTRUCT) else ""
    return ("int8 + rescore" if s["quantized"] else "float32") + graph


def _mib(x: float) -> str:
    return f"{x / 1024:.2f} GiB" if x >= 1024 else f"{x:.0f} MiB"


def report(data: dict) -> str:
    md = [
        "# A million ads on one machine: the embedded store at scale",
        "",
        _markdown(__doc__.split("\n\n")[1]),
        "",
        _markdown(__doc__.split("\n\n")[2]),
        "",
        f"Targets at 1,000,000 points on 2 cores: {TARGETS}.",
        "",
        "| points | vectors | layout | build s (write + payload indexes + graphs) | upsert points/s | disk | serve RSS (anon + file) "
        "| engine p50 / p99 ms | store p50 / p99 ms | recall@10 fused / image / text | HTTP p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in data["sizes"]:
        b, r, rec, h = s["build"], s["rss_detail_mib"]["after_queries"], s["recall@10_detail"], s.get("http")
        md.append(
            f"| {s['points']:,} | {s['vectors']} | {_layout(s)} "
            f"| {b['build_s']:,} ({b['upsert_s']:,} + {b.get('payload_index_s', '-')} + {b['optimize_s']:,}) "
            f"| {b['upsert_points_per_s']:,.0f} "
            f"| {_mib(s['disk_mib'])} | {_mib(r['rss'])} ({_mib(r.get('anon', 0))} + {_mib(r.get('file', 0))}) "
            f"| {s['engine']['p50']} / {s['engine']['p99']} | {s['store_ms']['p50']} / {s['store_ms']['p99']} "
            f"| {rec.get('fused')} / {rec.get('image')} / {rec.get('text')} "
            f"| {h['ms']['p50'] if h else '-'} / {h['ms']['p99'] if h else '-'} |"
        )
    md += _extrapolation(data["sizes"])
    for s in data["sizes"]:
        md += _details(s)
    return "\n".join(md)


OPTIMIZE_EXPONENT = 1.15  # optimize time ~ N^1.1-1.2 in runs here; used when only one size ran
TARGET_POINTS = 1_000_000


def _extrapolation(sizes: list[dict]) -> list[str]:
    """Build time, disk and memory at 1M points from the largest default run below 1M (until a 1M
    run replaces it)."""
    runs = [s for s in sizes if s["quantized"] and s.get("build", {}).get("ef_construct", HNSW_EF_CONSTRUCT)
            == HNSW_EF_CONSTRUCT and s["vectors"] == "pool"]  # fmt: skip
    if not runs or max(s["points"] for s in runs) >= TARGET_POINTS:
        return []
    runs.sort(key=lambda r: -r["points"])
    s = runs[0]
    r = TARGET_POINTS / s["points"]
    b, rss = s["build"], s["rss_detail_mib"]
    exponent, measured = OPTIMIZE_EXPONENT, "assumed"
    if len(runs) > 1 and runs[1]["build"]["optimize_s"] > 0:  # measured between the two largest runs
        small = runs[1]
        exponent = np.log(b["optimize_s"] / small["build"]["optimize_s"]) / np.log(
            s["points"] / small["points"]
        )
        measured = f"measured from {small['points']:,} to {s['points']:,} points"
    upsert, optimize = b["upsert_s"] * r, b["optimize_s"] * r**exponent
    store_anon = rss["store_opened"]["anon"] - rss["encoders_loaded"]["anon"]
    anon = rss["after_queries"]["anon"] + store_anon * (r - 1)
    return [
        "",
        f"**Extrapolated to {TARGET_POINTS:,} points from the {s['points']:,}-point run (not measured):** "
        f"build ~{(upsert + optimize) / 60:.0f} min (upsert {upsert / 60:.0f} min, linear; optimize "
        f"{optimize / 60:.0f} min, as N^{exponent:.2f}, {measured}); disk ~{s['disk_mib'] * r / 1024:.1f} GiB; "
        f"serving process ~{anon / 1024:.1f} GiB anonymous memory (the store's share at open, "
        f"{store_anon:.0f} MiB, times {r:g}; encoders and Python unchanged) plus the file pages it reads "
        "(page cache: the kernel can drop them). Latency and recall at a given hnsw_ef get worse with "
        "size and are not extrapolated: docs/scaling.md.",
    ]


def _details(s: dict) -> list[str]:
    b, r = s["build"], s["rss_detail_mib"]
    md = [
        "",
        f"## {s['points']:,} points, {s['vectors']} vectors, {_layout(s)}",
        "",
        f"- Build: write {b['upsert_s']:,} s ({b['upsert_points_per_s']:,.0f} points/s in the store, "
        f"batches of {b.get('batch', 256)}; synthesising the points took another {b['generate_s']:,} s, not "
        f"counted), payload indexes {b.get('payload_index_s', '-')} s, optimize {b['optimize_s']:,} s; {b['segments']} segments, {b['indexed_vectors']:,} "
        f"indexed vectors; builder peak RSS {_mib(b['builder_peak_rss_mib'])}.",
        "- Disk: " + ", ".join(f"{k} {_mib(v)}" for k, v in s["disk_detail_mib"].items() if k != "total")
        + f"; total {_mib(s['disk_mib'])} ({s['disk_mib'] / s['points'] * 1024:.1f} KiB per point).",
        "- Serving process RSS (MiB): "
        + "; ".join(f"{stage} {v['rss']} (anon {v.get('anon')}, file {v.get('file')}, peak {v['peak']})"
                    for stage, v in r.items())  # fmt: skip
        + f". Store opened in {s['store_open_s']} s (its opening files read ahead first), then "
        f"{s.get('warm_mib', '-')} MiB read ahead in {s.get('warm_s', '-')} s as `adsearch serve` does in the "
        "background (float32 originals, stored payloads, sidecar) before the queries.",
        f"- Load average of the machine (1, 5, 15 min; 2 cores, shared) at the start and the end: "
        f"{s.get('load_average', {}).get('at_start')}, {s.get('load_average', {}).get('at_end')}: "
        "other work on the machine shows in the latencies.",
        "",
        "| stage | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|",
        f"| engine, `Searcher.search` incl. encoding | {s['engine']['p50']} | {s['engine']['p95']} | {s['engine']['p99']} |",
        *[f"| &nbsp;&nbsp;{k} | {v['p50']} | {v['p95']} | {v['p99']} |" for k, v in s["stages_ms"].items()],
        f"| store call alone, fast path (same vectors) | {s['store_ms']['p50']} | {s['store_ms']['p95']} | {s['store_ms']['p99']} |",
        f"| store call alone, exact float32 | {s['exact_store_ms']['p50']} | {s['exact_store_ms']['p95']} | {s['exact_store_ms']['p99']} |",
    ]  # fmt: skip
    if s.get("http"):
        h = s["http"]
        md.append(
            f"| HTTP `GET /api/search` (`adsearch serve`) | {h['ms']['p50']} | {h['ms']['p95']} | {h['ms']['p99']} |"
        )
        warm = h.get("warm") or {}
        md += ["", f"`adsearch serve`: startup to first answer {h['startup_s']} s; warm-up (files read ahead in the "
                   f"background, encoders, one search) {warm.get('seconds', '-')} s, {warm.get('read_mib', '-')} MiB "
                   f"read; RSS after the queries {h['rss_mib']}."]  # fmt: skip
    md += ["", f"Recall@10 of the fast path vs exact search, same query vectors: {s['recall@10_detail']}."]
    if s.get("sweep"):
        md += ["", f"Search parameters on the first {s['sweep_queries']} queries (store call alone, same "
               "query vectors; recall against the exact fused top 10 of channels ranked "
               f"{REFERENCE_DEPTH} deep; prefetch depth = how deep each channel is ranked before fusion; "
               "hnsw_ef 'auto' = Qdrant's own beam, the larger of ef_construct (100) and the "
               "candidates wanted; **bold** = the defaults):", "",
               "| prefetch depth | vectors searched | oversampling | hnsw_ef | store p50 ms | p99 ms "
               "| recall@10 fused | image | text |",
               "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for row in s["sweep"]:
            rc = row["recall@10"]
            cells = [f"{row.get('prefetch_limit', REFERENCE_DEPTH)}",
                     f"{'int8, rescored' if row['quantised'] else 'float32'}", f"{row['oversampling'] or '-'}",
                     f"{row['hnsw_ef']}", f"{row['store_ms']['p50']}", f"{row['store_ms']['p99']}",
                     f"{rc.get('fused')}", f"{rc.get('image')}", f"{rc.get('text')}"]  # fmt: skip
            if row.get("default"):
                cells = [f"**{c}**" for c in cells]
            md.append("| " + " | ".join(cells) + " |")
    md += _peers(s)
    return md


def _peers(s: dict) -> list[str]:
    """The peers' rows beside adsearch's, from the same run."""
    if not s.get("peers"):
        return []
    b, r = s["build"], s["rss_detail_mib"]["after_queries"]
    md = ["", f"### Peers on the same {s['points']:,} points and {s['queries']} queries (same run, one after the "
          "other; store calls with the same query vectors: encoding is the same models for both)", "",
          "| engine | build s (write + indexes) | disk | RSS after the queries | store p50 / p99 ms "
          "| recall@10 fused vs its own exact | ads377 known_item / topic / exact_wording / brand |",
          "|---|---|---|---|---|---|---|"]  # fmt: skip
    ours = _our_quality()
    md.append(f"| adsearch (Qdrant Edge) | {b['build_s']:,} ({b['upsert_s']:,} + "
              f"{round(b.get('payload_index_s', 0) + b['optimize_s'], 1):,}) | {_mib(s['disk_mib'])} | {_mib(r['rss'])} "
              f"| {s['store_ms']['p50']} / {s['store_ms']['p99']} | {s['recall@10_detail'].get('fused')} | {ours} |")  # fmt: skip
    for p in s["peers"]:
        pb, q = p["build"], p.get("quality_ads377", {})
        quality = " / ".join(
            str(q[k]["value"]) for k in ("known_item", "topic", "exact_wording", "brand") if k in q
        )
        md.append(f"| {p['name']} {p['version']} | {round(pb['write_s'] + pb['index_s']['total'], 1):,} "
                  f"({pb['write_s']:,} + {pb['index_s']['total']:,}) | {_mib(pb['disk_mib'])} | {_mib(p['rss_mib']['rss'])} "
                  f"| {p['store_ms']['p50']} / {p['store_ms']['p99']} | {p['recall@10_vs_exact']} | {quality} |")  # fmt: skip
        md += ["", f"{p['name']} at other search settings (first {s['sweep_queries']} queries):", "",
               "| ef | refine factor | store p50 ms | p99 ms | recall@10 fused |", "|---|---|---|---|---|"]  # fmt: skip
        for row in p.get("sweep", []):
            cells = [str(row["ef"]), str(row["refine_factor"] or "-"), str(row["store_ms"]["p50"]),
                     str(row["store_ms"]["p99"]), str(row["recall@10"])]  # fmt: skip
            md.append("| " + " | ".join(f"**{c}**" if row.get("default") else c for c in cells) + " |")
    md += ["", "LanceDB set up as bench/peers/lancedb_peer.py says (IVF_HNSW_SQ on each vector column, its native "
           "BM25 index on the OCR text, RRFReranker over the three searches); its ads377 quality is its documented "
           "hybrid query (text vector + full text) on the 377 real ads, adsearch's is bench/results/fusion.md's "
           "adaptive hybrid (5-fold CV) on the same texts."]  # fmt: skip
    return md


def _our_quality() -> str:
    """adsearch's text hybrid on the ads377 sets (bench/results/fusion.json, adaptive, cross-validated)."""
    path = RESULTS / "fusion.json"
    if not path.exists():
        return "-"
    cv = json.loads(path.read_text()).get("adaptive_cv", {})
    return " / ".join(str(cv[k]) for k in ("known_item", "topic", "exact_wording", "brand") if k in cv)


def write(size: dict) -> None:
    data = merged(size)
    md = report(data)
    path = RESULTS / "scale.md"
    if path.exists() and DISTRIBUTED_MARK in (old := path.read_text()):
        tail = old[old.index(DISTRIBUTED_MARK) :].split("\n---\nMachine:")[0]
        md += "\n\n" + tail.rstrip()
    write_results("scale", data, md)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument("--batch", type=int, default=BULK_BATCH, help="points per write")
    parser.add_argument("--vectors", choices=("pool", "gauss", "copies", "random"), default="pool")
    parser.add_argument("--no-quantize", action="store_true", help="float32 vectors in RAM (the old layout)")
    parser.add_argument("--ef-construct", type=int, default=HNSW_EF_CONSTRUCT, help="HNSW build beam")
    parser.add_argument("--m", type=int, default=HNSW_M, help="HNSW links per node")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--drop", action="store_true", help="delete the store after the run")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-sweep", action="store_true", help="skip the oversampling / hnsw_ef sweep")
    parser.add_argument("--no-write", action="store_true", help="print, do not write bench/results")
    parser.add_argument("--no-peer", action="store_true", help="skip the LanceDB peer (bench extra)")
    parser.add_argument("--http-only", action="store_true",
                        help="measure `adsearch serve` again on the built store, keep the rest of the last run")  # fmt: skip
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--serve-spec", help=argparse.SUPPRESS)
    parser.add_argument("--serve-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args)
        return
    if args.peer:
        peer(args)
        return
    if args.http_only:
        write(http_again(args))
        return
    size = run(args)
    scratch = WORK / f"scale-{label(args)}-result.json"
    scratch.write_text(json.dumps(size, indent=2))
    print(json.dumps({k: size[k] for k in ("points", "engine", "rss_mib", "build_s", "disk_mib",
                                           "recall@10_vs_exact")}), flush=True)  # fmt: skip
    if not args.no_write:
        write(size)


if __name__ == "__main__":
    main()
