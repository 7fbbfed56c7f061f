"""One Settings object for the whole engine: defaults < ADSEARCH_* environment variables < CLI flags."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, PositiveInt, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.schema import CHANNELS
from ocr_text import DEFAULT_READERS, OcrSettings, reader_names

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_SPARSE_MODEL = "Qdrant/bm25"
Precision = Literal["int8", "fp32"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
# The int8 check (engine/models/onnx_towers.py): below either figure on the probe set, a tower runs in fp32.
# Chosen on measured towers (bench/results/quant_check.md, docs/decisions.md).
QUANT_MIN_COSINE = 0.995
QUANT_MIN_AGREEMENT = 0.9
# Qdrant's weighted RRF adds 1/(k + rank/w - 1) per channel (rank from 1) in float32: a weight past
# about 1000 changes nothing when k > 1 and near float32's limit ties every score; with k = 1 the top
# score is about w, so 1e39 gives inf (null in JSON). Weights are therefore 0..MAX_WEIGHT.
MAX_WEIGHT = 1000.0
# `adsearch tune --save` stores its choice of these under this collection-metadata key; search takes
# them as defaults wherever neither the environment nor a flag set them.
TUNED_FUSION = "tuned_fusion"
TUNABLE = ("rrf_k", "weights", "prefetch_limit")


def parse_readers(value: str | Iterable[str]) -> tuple[str, ...]:
    """'tesseract,ppocr' (flag or environment) or a list -> reader names: known ones, each once, >= 1."""
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else list(value)
    names = [n for n in names if n]
    known = reader_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown OCR reader(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if not names:
        raise ValueError(f"name at least one OCR reader ({', '.join(known)})")
    return tuple(dict.fromkeys(names))


class Settings(BaseSettings):
    """Every knob of the engine. Each field can be set as ADSEARCH_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix="ADSEARCH_", extra="ignore")

    # storage
    db: Path = Field(Path("adsearch-data"), description="folder of the embedded store")
    collection: str = Field("ads", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="letters, digits, _ and -")
    qdrant_url: str | None = Field(None, description="use a Qdrant server instead of the embedded store")
    qdrant_api_key: str | None = None
    shard_number: int | None = Field(
        None, ge=1, description="shards of a new collection on a Qdrant server/cluster (default: server's)"
    )
    replication_factor: int | None = Field(
        None, ge=1, description="copies of each shard on a Qdrant cluster (default: server's, 1)"
    )
    # int8 copies of the dense vectors in RAM, float32 originals on disk, results rescored with the
    # originals: ~4x less RAM for the same top hits (bench/results/scale.md, docs/scaling.md).
    quantize: bool = Field(
        True,
        description="a new collection keeps its dense vectors as int8 in RAM and float32 on disk "
        "(rescored search); an existing collection keeps the layout it was made with",
    )
    hnsw_ef: int = Field(
        512, ge=1, le=100_000,
        description="search beam of the dense channels' HNSW graphs: larger finds more of the exact top "
        "10 and is slower; raise it for millions of ads (bench/results/scale.md)",
    )  # fmt: skip

    # models
    clip_model: str = DEFAULT_CLIP_MODEL
    clip_dim: int = Field(
        512, ge=1, le=65536, description="image vector size used when the CLIP weights cannot be loaded"
    )
    require_visual: bool = False
    # Query encoding is bound by memory bandwidth (every weight read once per short query): smaller
    # weights are faster. Chosen per model on measured speed and quality (docs/decisions.md).
    clip_precision: Precision = Field("int8", description="CLIP weights: int8 or fp32")
    text_precision: Precision = Field("fp32", description="dense text model weights: int8 or fp32")
    quant_min_cosine: float = Field(
        QUANT_MIN_COSINE, ge=0, le=1, allow_inf_nan=False,
        description="an int8 ONNX tower whose mean cosine to fp32 on the probe set is lower runs in fp32",
    )  # fmt: skip
    quant_min_agreement: float = Field(
        QUANT_MIN_AGREEMENT, ge=0, le=1, allow_inf_nan=False,
        description="an int8 ONNX tower keeping fewer of each probe's 10 nearest probes runs in fp32",
    )  # fmt: skip
    onnx: bool = Field(True, description="run the model towers on ONNX Runtime (exported once, cached)")
    model_cache: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "adsearch",
        description="where exported ONNX models are kept",
    )
    text_model: str = DEFAULT_TEXT_MODEL
    sparse_model: str = DEFAULT_SPARSE_MODEL
    bm25_avg_len: float = Field(
        40.0,
        gt=0,
        le=1_000_000,
        allow_inf_nan=False,
        description="average OCR text length in tokens, for BM25 length norm",
    )
    keyword_ngram: int = Field(
        4, ge=0, le=10, description="character n-grams added to BM25 (OCR-error tolerance); 0 = off"
    )

    # OCR
    ocr_readers: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_READERS,
        description="OCR readers whose words are merged: tesseract, ppocr (comma-separated)",
    )
    ocr_ppocr_models: str | None = Field(
        None,
        description="PP-OCR models: bundled v6-tiny (default), v6-small or v5, or a folder with det.onnx, "
        "rec.onnx and a *dict*.txt",
    )
    ocr_ppocr_min_confidence: float = Field(60.0, ge=0, le=100, allow_inf_nan=False)
    ocr_ppocr_det_side: PositiveInt = Field(
        960, ge=32, le=8192, description="PP-OCR detection input: longest side in px"
    )
    ocr_lang: str = "eng"
    ocr_psm: int = Field(11, ge=0, le=13, description="Tesseract page segmentation mode (0-13)")
    ocr_min_confidence: float = Field(60.0, ge=0, le=100, allow_inf_nan=False)
    ocr_scales: tuple[Annotated[int, Field(ge=1, le=10_000)], ...] = Field(
        (700, 1600),
        min_length=1,
        max_length=8,
        description="one Tesseract pass per short-side size in px, merged by confidence (env: JSON list)",
    )
    ocr_retry_below_words: int = Field(
        0, ge=0, description="images with fewer words than this get 2 more OCR passes (binarised, inverted)"
    )

    # ingest
    cluster: str | None = Field(
        None,
        description="run decode + OCR + encoding on a Dask cluster: its scheduler address "
        "(tcp://host:8786), or local[:N] for a cluster of N worker processes on this machine",
    )
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, description="OCR processes")
    batch_size: int = Field(16, ge=1, le=1024, description="images per encoding/upsert batch")
    max_file_bytes: int = Field(
        100 * 2**20, ge=1, description="larger files (and URLs) are refused before they are read"
    )
    url_schemes: Annotated[tuple[str, ...], NoDecode] = Field(
        ("file", "s3", "gs", "http", "https"),
        description="URL schemes a source may use (comma-separated); local paths are always allowed",
    )
    url_timeout: float = Field(30.0, gt=0, le=3600, allow_inf_nan=False, description="seconds per URL fetch")
    max_image_pixels: int = Field(
        120_000_000,
        ge=1,
        description="larger images are refused as decompression bombs, from their header before any "
        "decoding (Pillow's own limit is set to it)",
    )

    # search
    # Fusion defaults tuned on the ads377 dev sets (bench/results/quality.md): a small RRF k trusts
    # each channel's top ranks; the dense text channel counts 3x.
    rrf_k: int = Field(3, ge=1, le=10_000)
    prefetch_limit: int = Field(100, ge=1, le=10_000)
    weights: dict[str, float] = Field(default_factory=lambda: {"image": 1.0, "text": 3.0, "keywords": 1.0})
    # 0.3: with near-copies present, 9.7 distinct ads per top 10 (10 at 0.5) at less ranking cost
    # (known-item nDCG@10 0.435 vs 0.410; topic 0.467 vs 0.405): bench/results/diversity.md
    mmr_diversity: float = Field(
        0.3, ge=0.0, le=1.0, allow_inf_nan=False,
        description="--diverse: how much maximal marginal relevance trades relevance for variety (0-1)",
    )  # fmt: skip

    # HTTP API (adsearch serve)
    host: str = Field("127.0.0.1", description="address to bind; 0.0.0.0 exposes the server to the network")
    port: int = Field(8000, ge=1, le=65535)
    api_key: str | None = Field(None, description="when set, write endpoints require it (X-API-Key header)")
    max_upload_bytes: int = Field(20 * 2**20, ge=1)
    max_upload_files: int = Field(50, ge=1)
    max_query_chars: int = Field(500, ge=1)
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Host header names the server answers besides the loopback names and the bound "
        "address (comma-separated; '*' answers any host, which re-opens DNS rebinding)",
    )
    # Searches are CPU-bound and hold the GIL in part: beyond ~2 per core, more in progress only makes
    # every answer (and health) later at the same throughput (bench/results/load.md, docs/decisions.md).
    max_concurrent_requests: int = Field(
        default_factory=lambda: max(4, 2 * (os.cpu_count() or 1)),
        ge=1,
        le=10_000,
        description="requests the server works on at once (searches, pages, uploads; default twice the "
        "cores, at least 4); more get 503 with Retry-After at once instead of queueing",
    )

    @field_validator("ocr_readers", mode="before")
    @classmethod
    def _split_readers(cls, value):
        return parse_readers(value)

    @field_validator("url_schemes", mode="before")
    @classmethod
    def _split_schemes(cls, value):
        names = value.split(",") if isinstance(value, str) else list(value)
        return tuple(dict.fromkeys(n.strip().lower().removesuffix("://") for n in names if n.strip()))

    @field_validator("ocr_scales")
    @classmethod
    def _distinct_scales(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(dict.fromkeys(value))  # a repeated size would only repeat the same OCR pass

    @field_validator("cluster")
    @classmethod
    def _cluster_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        name, _, count = value.partition(":")
        if name == "local" and (not count or (count.isdigit() and 1 <= int(count) <= 256)):
            return value
        if name == "local" or "://" not in value and ":" not in value:
            raise ValueError(
                f"'{value}' is not local, local:N (1-256) or a scheduler address like tcp://host:8786"
            )
        return value

    @field_validator("workers")
    @classmethod
    def _workers_in_reach(cls, value: int) -> int:
        limit = max(32, 4 * (os.cpu_count() or 1))
        if value > limit:
            raise ValueError(f"at most {limit} worker processes on this machine (each loads the OCR models)")
        return value

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = [name for name in value if name not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel(s) {', '.join(unknown)}; known: {', '.join(CHANNELS)}")
        for name, weight in value.items():
            if not (math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT):
                raise ValueError(
                    f"weight of {name} is {weight}: weights are numbers from 0 to {MAX_WEIGHT:g}"
                )
        if not any(value.get(name, 1.0) > 0 for name in CHANNELS):  # unnamed channels weigh 1
            raise ValueError("every channel has weight 0: give at least one a weight > 0")
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value):
        names = value.split(",") if isinstance(value, str) else list(value)
        return tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))

    def served_hosts(self) -> tuple[str, ...]:
        """Host names the HTTP server answers: loopback, the bound address, and `allowed_hosts`."""
        names = ["127.0.0.1", "localhost", "::1", self.host.lower().strip("[]"), *self.allowed_hosts]
        return tuple(dict.fromkeys(n for n in names if n not in ("0.0.0.0", "::")))

    def onnx_cache(self) -> Path | None:
        """Folder for exported ONNX towers, or None when the PyTorch path is asked for."""
        return self.model_cache if self.onnx else None

    def ocr_settings(self) -> OcrSettings:
        """The OCR knobs as ocr_text expects them."""
        return OcrSettings(
            readers=self.ocr_readers,
            ppocr_models=self.ocr_ppocr_models,
            ppocr_min_confidence=self.ocr_ppocr_min_confidence,
            ppocr_det_side=self.ocr_ppocr_det_side,
            lang=self.ocr_lang,
            psm=self.ocr_psm,
            min_confidence=self.ocr_min_confidence,
            scales=self.ocr_scales,
            retry_below_words=self.ocr_retry_below_words,
        )

    def with_overrides(self, **overrides) -> Settings:
        """A validated copy with the given non-None values replaced (how CLI flags win over the
        environment); a bad value raises pydantic's ValidationError, as a bad environment variable does."""
        values = {k: v for k, v in overrides.items() if v is not None}
        copy = type(self).model_validate({**self.model_dump(), **values})
        # what was set explicitly (environment, constructor, flags) stays known: tuned defaults yield to it
        copy.__pydantic_fields_set__ = self.model_fields_set | set(values)
        return copy

    def with_tuned(self, tuned: dict | None) -> Settings:
        """A copy with the fusion settings saved by `adsearch tune --save` (collection metadata) in
        place of the built-in defaults; fields set by the environment or a flag keep their values."""
        if not tuned:
            return self
        values = {f: tuned[f] for f in TUNABLE if f in tuned and f not in self.model_fields_set}
        copy = type(self).model_validate({**self.model_dump(), **values})
        copy.__pydantic_fields_set__ = set(self.model_fields_set)
        return copy
