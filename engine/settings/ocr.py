"""The OCR settings: one `ocr_<knob>` field per knob of ocr_text's OcrSettings, generated from it
(type and default come from OcrSettings; the check, description and command line from KNOBS here)."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable
from typing import Annotated

from pydantic import Field, create_model, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import NoDecode

from engine.settings.base import ENV_ONLY, EnvOnly, Flag, Section
from ocr_text import DEFAULT_READERS, OcrSettings, reader_names

PREFIX = "ocr_"


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


@dataclasses.dataclass(frozen=True)
class Knob:
    """How one OcrSettings knob is a setting: its check and description (`field`), its command line,
    and a stricter type than OcrSettings' where the check needs one."""

    field: FieldInfo
    command_line: Flag | EnvOnly = ENV_ONLY
    annotation: object = None


READERS_HELP = (
    "OCR readers whose words are merged, comma-separated: tesseract, ppocr (default "
    f"{','.join(DEFAULT_READERS)}; env ADSEARCH_OCR_READERS). A reader that cannot load is left out "
    "with one warning line. Changing them re-OCRs the collection on the next ingest"
)
KNOBS = {
    "readers": Knob(
        Field(description="OCR readers whose words are merged: tesseract, ppocr (comma-separated)"),
        Flag(READERS_HELP, metavar="READERS", parse=parse_readers),
        Annotated[tuple[str, ...], NoDecode],
    ),
    "lang": Knob(Field()),
    "psm": Knob(Field(ge=0, le=13, description="Tesseract page segmentation mode (0-13)")),
    "min_confidence": Knob(Field(ge=0, le=100, allow_inf_nan=False)),
    "scales": Knob(
        Field(
            min_length=1,
            max_length=8,
            description="one Tesseract pass per short-side size in px, merged by confidence (env: JSON list)",
        ),
        annotation=tuple[Annotated[int, Field(ge=1, le=10_000)], ...],
    ),
    "retry_below_words": Knob(
        Field(
            ge=0, description="images with fewer words than this get 2 more OCR passes (binarised, inverted)"
        )
    ),
    "ppocr_min_confidence": Knob(Field(ge=0, le=100, allow_inf_nan=False)),
    "ppocr_det_side": Knob(Field(ge=32, le=8192, description="PP-OCR detection input: longest side in px")),
    "ppocr_models": Knob(
        Field(
            description="PP-OCR models: bundled v6-tiny (default), v6-small or v5, or a folder with "
            "det.onnx, rec.onnx and a *dict*.txt"
        )
    ),
}
# OcrSettings knobs that are no setting: the reader's own safety limit
NOT_SETTINGS = ("timeout_s",)


def _ocr_fields() -> dict[str, tuple[object, object]]:
    """`ocr_<knob>`: (annotation, default) for create_model, one per OcrSettings knob in KNOBS."""
    types = typing.get_type_hints(OcrSettings)
    fields = {}
    for knob in dataclasses.fields(OcrSettings):
        if knob.name in NOT_SETTINGS:
            continue
        if knob.name not in KNOBS:
            raise TypeError(f"OcrSettings.{knob.name} is neither in KNOBS nor in NOT_SETTINGS ({__name__})")
        spec = KNOBS[knob.name]
        annotation = Annotated[spec.annotation or types[knob.name], spec.command_line, spec.field]
        fields[PREFIX + knob.name] = (annotation, knob.default)
    return fields


OcrKnobs = create_model("OcrKnobs", __base__=Section, __module__=__name__, **_ocr_fields())


class OcrSection(OcrKnobs):
    """The OCR settings, as ADSEARCH_OCR_<KNOB>; `ocr_settings()` hands them to ocr_text."""

    @field_validator("ocr_readers", mode="before")
    @classmethod
    def _split_readers(cls, value):
        return parse_readers(value)

    @field_validator("ocr_scales")
    @classmethod
    def _distinct_scales(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(dict.fromkeys(value))  # a repeated size would only repeat the same OCR pass

    def ocr_settings(self) -> OcrSettings:
        """The OCR knobs as ocr_text expects them."""
        return OcrSettings(**{knob: getattr(self, PREFIX + knob) for knob in KNOBS})
