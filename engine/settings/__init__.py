"""The engine's settings: defaults < ADSEARCH_* environment variables < CLI flags.

One section per concern (store, models, ocr, ingest, search), each a small pydantic-settings class;
`Settings` is all of them, read flat (`settings.db`, `settings.ocr_psm`). Each field says whether a
CLI flag sets it (`Flag`) or only the environment (`ENV_ONLY`): engine.cli reads that, nothing else.
The HTTP server's section lives with the server (api/settings.py)."""

from __future__ import annotations

from engine.settings.base import ENV_ONLY, EnvOnly, Flag, Section, command_line_of, flags_of
from engine.settings.ingest import IngestSection
from engine.settings.models import (
    DEFAULT_CLIP_MODEL,
    DEFAULT_SPARSE_MODEL,
    DEFAULT_TEXT_MODEL,
    PRECISIONS,
    QUANT_MIN_AGREEMENT,
    QUANT_MIN_COSINE,
    ModelsSection,
    Precision,
)
from engine.settings.ocr import OcrSection, parse_readers
from engine.settings.search import MAX_WEIGHT, TUNABLE, TUNED_FUSION, SearchSection
from engine.settings.store import SERVER_FLAGS, StoreSection

__all__ = [
    "DEFAULT_CLIP_MODEL", "DEFAULT_SPARSE_MODEL", "DEFAULT_TEXT_MODEL", "ENV_ONLY", "MAX_WEIGHT",
    "PRECISIONS", "QUANT_MIN_AGREEMENT", "QUANT_MIN_COSINE", "SERVER_FLAGS", "TUNABLE", "TUNED_FUSION",
    "EnvOnly", "Flag", "IngestSection", "ModelsSection", "OcrSection", "Precision", "SearchSection",
    "Section", "Settings", "StoreSection", "command_line_of", "flags_of", "parse_readers",
]  # fmt: skip


# pydantic lists the fields of the last base first: store, models, ocr, ingest, search
class Settings(SearchSection, IngestSection, OcrSection, ModelsSection, StoreSection):
    """Every knob of the engine. Each field can be set as ADSEARCH_<NAME> in the environment."""

    def with_overrides(self, **overrides) -> Settings:
        """A validated copy with the given non-None values replaced (how CLI flags win over the
        environment); a bad value raises pydantic's ValidationError, as a bad environment variable does.
        A name that is no field of this class is a TypeError, not silently dropped."""
        unknown = sorted(set(overrides) - set(type(self).model_fields))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(unknown)}")
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
        # a record saved before adaptive fusion existed was chosen, and measured, with fixed weights
        tuned = {"fusion": "fixed", **tuned}
        values = {f: tuned[f] for f in TUNABLE if f in tuned and f not in self.model_fields_set}
        copy = type(self).model_validate({**self.model_dump(), **values})
        copy.__pydantic_fields_set__ = set(self.model_fields_set)
        return copy
