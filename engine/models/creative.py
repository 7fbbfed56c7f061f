"""The `creative` vector: a perceptual fingerprint of an image, so the same ad resized, recompressed,
cropped a little, colour-shifted or with a sticker on it is found without any model weights.

Two parts, each L2-normalised, concatenated with equal weight (so the cosine of two vectors is the
mean of the parts' cosines):

- pHash (imagehash, 8x8 = 64 bits) as +-1: cosine = 1 - 2 * hamming / 64. Robust to scaling, JPEG
  and colour changes, weak against crops (a crop shifts every DCT basis).
- the 6x6 lowest frequencies of the same 32x32 greyscale DCT, DC left out (35 numbers), each
  multiplied by its frequency (natural images fall off as 1/f, so this whitens them): real values
  degrade smoothly under a 5-10 % crop where pHash's bits flip.

Both are computed on `clip_view` of the image (short side 224 px), what ingest hands the main process,
so ingest and query hash the same pixels. Cosine >= THRESHOLD means "the same creative": chosen on
the ads377 variants (bench/duplicates.py, docs/decisions.md).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.media.images import clip_view

VERSION = "phash8+dct6w-v1"  # part of the pipeline signature: a change re-encodes stored points once
PHASH_BITS = 64
DCT_KEEP = 6
CREATIVE_DIM = PHASH_BITS + DCT_KEEP * DCT_KEEP - 1  # 99
THRESHOLD = 0.60  # cosine at or above which two images are the same creative

_SIDE = 32
_u, _v = np.meshgrid(np.arange(DCT_KEEP), np.arange(DCT_KEEP), indexing="ij")
_FREQ = np.hypot(_u, _v).ravel()[1:]  # weight of each kept coefficient (DC dropped)


def _unit(values: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(values))
    return values / norm if norm > 1e-9 else np.full_like(values, 1 / np.sqrt(len(values)))


def creative_vector(image: Image.Image, viewed: bool = False) -> list[float]:
    """The creative fingerprint of an image (CREATIVE_DIM floats, unit length). `viewed`: the image
    is already `clip_view`'s output (ingest's worker sends that)."""
    import imagehash
    from scipy.fft import dctn

    view = image if viewed else clip_view(image.convert("RGB"))
    bits = np.asarray(imagehash.phash(view, hash_size=8).hash, dtype=np.float64).ravel() * 2 - 1
    grey = np.asarray(view.convert("L").resize((_SIDE, _SIDE), Image.Resampling.LANCZOS), dtype=np.float64)
    low = dctn(grey, norm="ortho")[:DCT_KEEP, :DCT_KEEP].ravel()[1:] * _FREQ
    vector = np.concatenate([_unit(bits), _unit(low)]) / np.sqrt(2)
    return vector.tolist()


def same_creative(score: float, threshold: float = THRESHOLD) -> bool:
    return score >= threshold


__all__ = ["CREATIVE_DIM", "THRESHOLD", "VERSION", "creative_vector", "same_creative"]
