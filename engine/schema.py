"""The shared records every layer may import: channel, mode and payload field names (declared once here),
point ids, sparse vectors and the OCR a payload keeps. No imports from the rest of engine."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass

from ocr_text import OcrResult, OcrWord

# Channel and mode names. What each channel is (its vector, encoders, mode, label) is declared once,
# in engine.channels, whose registry gives the list of channels and the modes derived from them.
IMAGE_CHANNEL, TEXT_CHANNEL, SPARSE_CHANNEL = "image", "text", "keywords"
CREATIVE_CHANNEL = "creative"
HYBRID_MODE = "hybrid"  # every fused channel at once

# Payload fields ingest writes on every point (user metadata fields sit beside them, never with
# these names); those a filter, a facet or a sort may name, with their types; and the heavy ones
# search hits leave out (the embedded store keeps them in its sidecar file).
PAYLOAD_FIELDS = (
    "paths", "sha256", "bytes", "width", "height", "format", "ocr_text", "ocr_raw_text", "ocr_words",
    "ocr_confidence", "ocr_readers", "ocr_words_by_reader", "ocr_errors", "has_text", "pipeline",
    "ingested_at", "folder", "file_date",
)  # fmt: skip
INGEST_FIELDS: dict[str, str] = {
    "folder": "keyword", "format": "keyword", "width": "integer", "height": "integer", "bytes": "integer",
    "has_text": "bool", "ocr_confidence": "float", "ingested_at": "datetime", "file_date": "datetime",
}  # fmt: skip
# What a user names the things they save (boards, watches): letters of any script, digits, space, _, .
# and -, starting with a letter or digit (never read as an option or a list), no double or trailing
# space; filters, facets and URLs read such names back unchanged. Compared without regard to case.
MAX_NAME_CHARS = 64
SAVED_NAME = re.compile(r"^[^\W_](?:[\w.-]| (?! )){0,63}(?<! )$")
SAVED_NAME_RULE = (
    f"1 to {MAX_NAME_CHARS} letters, digits, spaces, '_', '.' or '-', starting with a letter or digit "
    "(no double or trailing spaces)"
)


def saved_name(name: object) -> str | None:
    """`name` as it is kept (surrounding spaces dropped, one Unicode spelling), or None when it breaks
    SAVED_NAME_RULE."""
    if not isinstance(name, str):
        return None
    name = unicodedata.normalize("NFC", name.strip())  # one spelling of é, whatever the keyboard sent
    return name if len(name) <= MAX_NAME_CHARS and SAVED_NAME.match(name) else None


BOARDS_FIELD = "boards"  # the boards an ad is on (engine.boards), a keyword list
# Fields analysts set, never ingest (a re-ingest keeps them): absent until an ad joins a board.
MEMBERSHIP_FIELDS: dict[str, str] = {BOARDS_FIELD: "keywords"}
FILTERABLE_FIELDS: dict[str, str] = {**INGEST_FIELDS, **MEMBERSHIP_FIELDS}
HEAVY_FIELDS = ("ocr_words", "ocr_raw_text", "pipeline")

ID_NAMESPACE = uuid.UUID("6f1d3f8e-7c0a-4a8e-9a55-ad5ea4c40001")


def point_id(sha256_hex: str) -> str:
    """Point id of an image: UUID5 of its bytes' sha256, so the same bytes always map to one point."""
    return str(uuid.uuid5(ID_NAMESPACE, sha256_hex))


@dataclass(frozen=True)
class SparseVec:
    """A sparse vector as Qdrant wants it: term ids and weights."""

    indices: list[int]
    values: list[float]


def stored_ocr(payload: dict) -> OcrResult:
    """The OCR result kept in a point's payload."""
    words = [OcrWord(**w) for w in payload.get("ocr_words") or []]
    readers = tuple(payload.get("ocr_readers") or ["tesseract"])  # stored before there were readers
    return OcrResult(payload.get("ocr_text", ""), payload.get("ocr_raw_text", ""), words, readers)
