"""A board as a zip: each ad's original bytes (as ingested, sha256 checked) and a manifest.csv, one
image at a time into a file beside the target, renamed when complete."""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from engine.errors import NotFound
from engine.export import write_rows
from engine.export.base import ExportError

if TYPE_CHECKING:
    from engine.library import Library

MANIFEST = ["id", "file", "paths", "missing", "ocr_text"]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
BATCH = 256


def write_board_zip(library: Library, board: str, out: Path) -> dict:
    """Write the board's ads into the zip `out`; an original that can no longer be read (gone,
    changed) is left out and its manifest row says why. What was written."""
    ids = library.boards.ids(board)
    partial = out.with_name(f".{out.name}.partial")
    rows, written = [], 0
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
            for first in range(0, len(ids), BATCH):
                payloads = library.store.retrieve(ids[first : first + BATCH])
                for number, pid in enumerate(ids[first : first + BATCH], first + 1):
                    row = _add(library, archive, number, pid, payloads.get(pid) or {})
                    written += not row["missing"]
                    rows.append(row)
            manifest = io.BytesIO()
            write_rows(rows, MANIFEST, "csv", manifest)
            archive.writestr("manifest.csv", manifest.getvalue())
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from None
    return {"board": board, "zip": str(out), "images": written, "missing": len(ids) - written}


def _add(library: Library, archive: zipfile.ZipFile, number: int, pid: str, payload: dict) -> dict:
    paths = payload.get("paths") or []
    name = _UNSAFE.sub("_", PurePosixPath(paths[0]).name if paths else pid)[:100]
    entry = f"images/{number:05d}-{name}"
    row = {"id": pid, "file": entry, "paths": paths, "missing": "", "ocr_text": payload.get("ocr_text", "")}
    try:
        archive.writestr(entry, library.original(pid))
    except NotFound as exc:
        row.update(file="", missing=str(exc))
    return row
