"""`adsearch backup`: a consistent copy of everything a library is, written to any fsspec destination
(a folder, `s3://...`): the points (vectors and payloads, the sidecar's fields included) as Parquet,
the collection metadata (boards, saved tuning, models, store format), the watches, the job journal
and the uploaded files, with a manifest (format version, counts, sha256 per file) written last.

Consistent: the copy is taken under the library's write lock, so no store write (an ingest batch, a
delete, a board change) is half in it; searches go on meanwhile, writes wait. An upload job caught
between two of its batches is in the copy as it was on disk (files, journal, the points written so
far): restored, the job resumes as after a crash. Watches are copied with SQLite's backup API (a
transaction-consistent copy; a check that had not run yet runs at the next ingest, as after a crash)."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import fsspec
import pyarrow.parquet as pq

from engine.admin import backup_format as fmt
from engine.admin.backup_format import BackupError, HashingWriter
from engine.channels import all_channels
from engine.store import Store
from engine.store.format import STORE_FORMAT
from engine.watches import WatchBook

BATCH = 512


class Library(Protocol):
    """What a backup reads of a library (engine.library.Library is one)."""

    store: Store
    write_lock: threading.Lock
    watches: WatchBook
    data_dir: Path
    upload_dir: Path


def backup_library(library: Library, destination: str, progress: bool = False) -> dict:
    """Write a backup of `library` to `destination` (a new or empty folder or URL); its manifest."""
    fs, root = fsspec.core.url_to_fs(destination)
    if fs.exists(root) and fs.ls(root):
        raise BackupError(f"{destination} is not empty: back up into a new folder")
    fs.makedirs(root, exist_ok=True)
    store = library.store
    with library.write_lock:  # writes wait; searches go on
        dims = store.dims()
        if dims is None:
            raise BackupError("nothing to back up: the collection does not exist yet")
        files: dict[str, dict] = {}
        points = _write_points(fs, root, store, dims, files, progress)
        meta = {k: v for k, v in store.metadata().items() if k != "indexes"}
        _write_bytes(fs, root, fmt.COLLECTION, json.dumps(meta, indent=1).encode(), files)
        watches = _copy_watches(fs, root, library.watches.path, files)
        jobs = _copy_folder(fs, root, library.data_dir / fmt.JOBS, fmt.JOBS, files)
        uploads = _copy_folder(fs, root, library.upload_dir, fmt.UPLOADS, files)
    manifest = {
        "format": fmt.FORMAT, "version": fmt.VERSION, "store_format": meta.get("store_format", STORE_FORMAT),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "collection": store.collection,
        "dims": dims, "indexes": store.metadata().get("indexes") or {}, "upload_dir": str(library.upload_dir),
        "counts": {"points": points, "boards": len(meta.get("boards") or {}), "watches": watches,
                   "jobs": jobs, "uploads": uploads},
        "files": files,
    }  # fmt: skip
    with fs.open(f"{root}/{fmt.MANIFEST}", "wb") as handle:  # last: a backup without it is incomplete
        handle.write(json.dumps(manifest, indent=1).encode())
    return manifest


def _write_points(fs, root: str, store, dims: dict[str, int], files: dict, progress: bool) -> int:
    """Every point as Parquet row groups of BATCH points; how many."""
    from tqdm import tqdm

    schema = fmt.point_schema(dims, [c.name for c in all_channels() if c.sparse])
    count = 0
    with fs.open(f"{root}/{fmt.POINTS}", "wb") as raw, tqdm(
        total=store.count(), unit="pt", disable=not progress, dynamic_ncols=True, desc="backup"
    ) as bar:  # fmt: skip
        out = HashingWriter(raw)
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            batch = []
            for point in store.points(BATCH):
                batch.append(point)
                if len(batch) == BATCH:
                    writer.write_table(fmt.point_table(batch, schema), row_group_size=BATCH)
                    count, batch = count + len(batch), []
                    bar.update(BATCH)
            if batch:
                writer.write_table(fmt.point_table(batch, schema), row_group_size=BATCH)
                count += len(batch)
                bar.update(len(batch))
    files[fmt.POINTS] = out.entry()
    return count


def _write_bytes(fs, root: str, name: str, data: bytes, files: dict) -> None:
    with fs.open(f"{root}/{name}", "wb") as raw:
        out = HashingWriter(raw)
        out.write(data)
    files[name] = out.entry()


def _copy_watches(fs, root: str, path: Path, files: dict) -> int:
    """The watch book through SQLite's backup API (consistent while others write it); its watches."""
    if not path.is_file():
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / fmt.WATCHES
        source, target = sqlite3.connect(path), sqlite3.connect(copy)
        try:
            source.backup(target)
            count = target.execute("SELECT count(*) FROM watches").fetchone()[0]
        finally:
            source.close()
            target.close()
        _write_bytes(fs, root, fmt.WATCHES, copy.read_bytes(), files)
    return count


def _copy_folder(fs, root: str, folder: Path, name: str, files: dict) -> int:
    """The regular files right in `folder` (no links, no sub-folders, no half-written `.part`);
    how many."""
    if not folder.is_dir():
        return 0
    fs.makedirs(f"{root}/{name}", exist_ok=True)
    count = 0
    for path in sorted(folder.iterdir()):
        if path.is_symlink() or not path.is_file() or path.name.startswith("."):
            continue
        _write_bytes(fs, root, f"{name}/{path.name}", path.read_bytes(), files)
        count += 1
    return count
