"""What made a point: the pipeline record (OCR settings, models, precision, runtime; its signature
changes whenever re-processing would change a point) and the model facts ingest records. Shared by
ingest and its executors, which compute them where the models are loaded."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.channels import BUILTIN, all_channels
from engine.channels import dims as channel_dims
from engine.models.creative import VERSION as CREATIVE_VERSION
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
    if added := plugin_channels():  # a channel added by a plug-in re-encodes stored points once
        what = (*what, added)
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


def plugin_channels() -> tuple[tuple[str, str], ...]:
    """(name, version) of each registered channel that is not built in."""
    return tuple((c.name, c.version) for c in all_channels() if c not in BUILTIN)


def model_facts(ocr_settings: OcrSettings, encoders: Encoders) -> ModelFacts:
    """What ingest records about these encoders (and OCR settings)."""
    return ModelFacts(
        pipeline=pipeline_info(ocr_settings, encoders),
        dims=channel_dims(encoders),
        visual=encoders.visual,
        clip_error=encoders.clip_error,
        models=encoders.models(),
    )
