"""What made a point: the pipeline record (OCR settings, models, precision, runtime; its signature
changes whenever re-processing would change a point) and the model facts ingest records. Shared by
ingest and its executors, which compute them where the models are loaded."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.models.creative import VERSION as CREATIVE_VERSION
from engine.schema import IMAGE_CHANNEL, TEXT_CHANNEL
from ocr_text import OcrSettings, ocr_signature, tesseract_version

if TYPE_CHECKING:
    from engine.models.encoders import Encoders


@dataclass
class ModelFacts:
    """What ingest records about the models that encode (model_facts): the pipeline
    record (its `signature` identifies what made a point), each dense channel's vector size (image
    None without CLIP), whether the image channel is on and why not."""

    pipeline: dict
    dims: dict[str, int | None]
    visual: bool
    clip_error: str | None
    models: dict


def pipeline_info(ocr_settings: OcrSettings, encoders: Encoders) -> dict:
    """What produced a point; its `signature` changes whenever re-processing would change the point.
    `precision` is what each channel's towers ran after the int8 check; `quantisation` that check's
    figures per tower asked for int8 (they explain the precision, so they are not in the signature)."""
    models = encoders.models()
    ocr = ocr_signature(ocr_settings)
    precision = encoders.precision
    what = (ocr, sorted(models.items()), sorted(precision.items()), encoders.runtime, CREATIVE_VERSION)
    digest = hashlib.sha1(repr(what).encode()).hexdigest()[:12]
    return {
        "signature": digest,
        "ocr": ocr,
        "tesseract": tesseract_version(),
        "models": models,
        "precision": precision,
        "runtime": encoders.runtime,
        "creative": CREATIVE_VERSION,
        "quantisation": {
            tower: {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
            for tower, figures in encoders.quantisation().items()
        },
    }


def model_facts(ocr_settings: OcrSettings, encoders: Encoders) -> ModelFacts:
    """What ingest records about these encoders (and OCR settings)."""
    return ModelFacts(
        pipeline=pipeline_info(ocr_settings, encoders),
        dims={IMAGE_CHANNEL: encoders.clip.dim if encoders.clip else None, TEXT_CHANNEL: encoders.dense.dim},
        visual=encoders.visual,
        clip_error=encoders.clip_error,
        models=encoders.models(),
    )
