"""The OCR configuration this machine can actually run: readers that cannot load are left out, with
one warning line per process (as for CLIP), so OCR goes on with the readers that work."""

from __future__ import annotations

import logging
from functools import cache

from ocr_text import OcrSettings, usable_readers

log = logging.getLogger(__name__)


@cache
def usable_ocr(wanted: OcrSettings) -> OcrSettings:
    """`wanted` without the readers that cannot load here; says so once."""
    usable, missing = usable_readers(wanted)
    for name, reason in missing.items():
        log.warning(
            "OCR reader %s unavailable (%s): reading with %s alone", name, reason, " + ".join(usable.readers)
        )
    return usable
