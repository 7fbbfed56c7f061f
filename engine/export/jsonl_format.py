"""JSON Lines: one JSON object per row, the columns in order, lists as lists, null for none."""

from __future__ import annotations

import json
import math

from engine.export.base import Writer


def _plain(value: object) -> object:
    """A value strict JSON can carry (NaN and the infinities have no JSON form: null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JsonlWriter(Writer):
    name = "jsonl"
    media_type = "application/x-ndjson"
    suffix = ".jsonl"

    def write(self, row: dict) -> None:
        record = {c.name: _plain(row.get(c.name)) for c in self.columns}
        line = json.dumps(record, ensure_ascii=False, default=str, allow_nan=False)
        # UTF-8; a lone surrogate (an escaped file name) is written as its \\u escape
        self.sink.write(line.encode("utf-8", "backslashreplace") + b"\n")
