"""Which models encode the channels, at what precision, on which runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field

from engine.settings.base import ENV_ONLY, Flag, Section

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_SPARSE_MODEL = "Qdrant/bm25"
Precision = Literal["int8", "fp32"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
# The int8 check (engine/models/onnx_towers.py): below either figure on the probe set, a tower runs in fp32.
# Chosen on measured towers (bench/results/quant_check.md, docs/decisions.md).
QUANT_MIN_COSINE = 0.995
QUANT_MIN_AGREEMENT = 0.9


def _default_model_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "adsearch"


class ModelsSection(Section):
    """The model settings; the first five are the `models` flags (in this order)."""

    clip_model: Annotated[
        str,
        Flag(
            "image-text model (CLIP or SigLIP, chosen by its config): Hugging Face id or local folder "
            "(default openai/clip-vit-base-patch32)"
        ),
    ] = DEFAULT_CLIP_MODEL
    text_model: Annotated[str, Flag("dense text model: HF id or local folder (default all-MiniLM-L6-v2)")] = (
        DEFAULT_TEXT_MODEL
    )
    require_visual: Annotated[
        bool, Flag("fail instead of running text-only when the CLIP weights cannot be loaded")
    ] = False
    # Query encoding is bound by memory bandwidth (every weight read once per short query): smaller
    # weights are faster. Chosen per model on measured speed and quality (docs/decisions.md).
    clip_precision: Annotated[
        Precision, Flag("CLIP weights (default int8: several times faster on CPU than fp32)")
    ] = Field("int8", description="CLIP weights: int8 or fp32")
    text_precision: Annotated[
        Precision,
        Flag(
            "dense text model weights (default fp32: int8 measurably lowers quality). Changing either "
            "precision re-encodes the collection on the next ingest; the OCR is kept"
        ),
    ] = Field("fp32", description="dense text model weights: int8 or fp32")
    clip_dim: Annotated[int, ENV_ONLY] = Field(
        512, ge=1, le=65536, description="image vector size used when the CLIP weights cannot be loaded"
    )
    quant_min_cosine: Annotated[float, ENV_ONLY] = Field(
        QUANT_MIN_COSINE, ge=0, le=1, allow_inf_nan=False,
        description="an int8 ONNX tower whose mean cosine to fp32 on the probe set is lower runs in fp32",
    )  # fmt: skip
    quant_min_agreement: Annotated[float, ENV_ONLY] = Field(
        QUANT_MIN_AGREEMENT, ge=0, le=1, allow_inf_nan=False,
        description="an int8 ONNX tower keeping fewer of each probe's 10 nearest probes runs in fp32",
    )  # fmt: skip
    onnx: Annotated[bool, ENV_ONLY] = Field(
        True, description="run the model towers on ONNX Runtime (exported once, cached)"
    )
    model_cache: Annotated[Path, ENV_ONLY] = Field(
        default_factory=_default_model_cache, description="where exported ONNX models are kept"
    )
    sparse_model: Annotated[str, ENV_ONLY] = DEFAULT_SPARSE_MODEL
    bm25_avg_len: Annotated[float, ENV_ONLY] = Field(
        40.0, gt=0, le=1_000_000, allow_inf_nan=False,
        description="average OCR text length in tokens, for BM25 length norm",
    )  # fmt: skip
    keyword_ngram: Annotated[int, ENV_ONLY] = Field(
        4, ge=0, le=10, description="character n-grams added to BM25 (OCR-error tolerance); 0 = off"
    )

    def onnx_cache(self) -> Path | None:
        """Folder for exported ONNX towers, or None when the PyTorch path is asked for."""
        return self.model_cache if self.onnx else None
