"""`adsearch restore FROM --db DIR`: a backup (engine.admin.backup) checked against its manifest,
then written into a new library. `--check` only verifies it.

Nothing is overwritten: the target must be a new or empty folder (and, for a Qdrant server, a
collection that does not exist). An embedded library is built in `DIR.restoring` and renamed to DIR
when complete, so a crash leaves DIR untouched and a rerun starts over. Paths of uploaded files are
moved to the new library's uploads folder; paths to files outside the library stay as they were (a
backup holds the library, not the folders it was ingested from)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import fsspec
import pyarrow.parquet as pq

from engine.admin import backup_format as fmt
from engine.admin.backup_format import BackupError
from engine.settings import Settings
from engine.store import open_store
from engine.store.bulk import BULK_BATCH, BulkLoad
from engine.store.format import STORE_FORMAT, record_format

CHUNK = 2**20


def read_manifest(source: str) -> tuple[object, str, dict]:
    """(filesystem, root, manifest) of a backup; BackupError when it is not one this release reads."""
    fs, root = fsspec.core.url_to_fs(source)
    try:
        with fs.open(f"{root}/{fmt.MANIFEST}", "rb") as handle:
            manifest = json.loads(handle.read())
    except FileNotFoundError:
        raise BackupError(f"{source}: no {fmt.MANIFEST}: not a backup, or one that did not finish") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source}: cannot read {fmt.MANIFEST}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != fmt.FORMAT:
        raise BackupError(f"{source}: {fmt.MANIFEST} is not an adsearch backup's")
    if manifest.get("version") != fmt.VERSION or manifest.get("store_format", 0) > STORE_FORMAT:
        raise BackupError(
            f"{source}: backup format {manifest.get('version')} (store format "
            f"{manifest.get('store_format')}) is newer than this adsearch reads (backup {fmt.VERSION}, "
            f"store {STORE_FORMAT}): upgrade adsearch"
        )
    return fs, root, manifest


def check_backup(source: str) -> dict:
    """Verify every file the manifest lists (size and sha256) and that nothing is missing; the manifest,
    or BackupError naming the first file that differs."""
    return _checked(source)[2]


def _checked(source: str) -> tuple[object, str, dict]:
    """read_manifest's (filesystem, root, manifest), once every file it lists is verified."""
    fs, root, manifest = read_manifest(source)
    files = manifest.get("files") or {}
    for name in (fmt.POINTS, fmt.COLLECTION):
        if name not in files:
            raise BackupError(f"{source}: the manifest lists no {name}")
    for name, expected in files.items():
        if ".." in Path(name).parts or name.startswith("/"):
            raise BackupError(f"{source}: the manifest names a file outside the backup: {name!r}")
        digest, size = hashlib.sha256(), 0
        try:
            with fs.open(f"{root}/{name}", "rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            raise BackupError(f"{source}: {name} is missing") from None
        if size != expected.get("bytes") or digest.hexdigest() != expected.get("sha256"):
            raise BackupError(f"{source}: {name} differs from the manifest (damaged or changed)")
    return fs, root, manifest


def restore_backup(source: str, settings: Settings, progress: bool = False) -> dict:
    """Check the backup, then restore it into the library `settings` name; what was restored."""
    fs, root, manifest = _checked(source)
    target = Path(settings.db)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} is not empty: restore into a new folder (nothing is overwritten)")
    staging = target.with_name(f"{target.name}.restoring")
    shutil.rmtree(staging, ignore_errors=True)  # what a crashed run left
    staging.mkdir(parents=True)
    staged = settings.with_overrides(db=staging, collection=manifest["collection"])
    uploads = str(target.resolve() / fmt.UPLOADS)  # where the restored library keeps them
    points = _restore_points(fs, root, manifest, staged, uploads, progress)
    _restore_files(fs, root, manifest, staging, settings.collection or manifest["collection"])
    if target.exists():
        target.rmdir()
    staging.replace(target)
    return {"restored": str(target), "collection": manifest["collection"], "points": points,
            "counts": manifest["counts"], "created_at": manifest["created_at"]}  # fmt: skip


def _restore_points(fs, root: str, manifest: dict, settings: Settings, uploads: str, progress: bool) -> int:
    """The points, the collection metadata and the payload indexes, in a new collection."""
    from tqdm import tqdm

    store = open_store(settings)
    try:
        if store.dims() is not None:
            raise BackupError(f"collection '{store.collection}' exists already: restore into another one")
        store.ensure_collection(manifest["dims"])
        old = manifest.get("upload_dir", "")
        load = BulkLoad(store)
        with fs.open(f"{root}/{fmt.POINTS}", "rb") as handle, tqdm(
            total=manifest["counts"]["points"], unit="pt", disable=not progress, desc="restore"
        ) as bar:  # fmt: skip
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=BULK_BATCH):
                points = list(fmt.table_points(batch))
                for point in points:
                    point.payload["paths"] = [_moved(p, old, uploads) for p in point.payload.get("paths", [])]
                load.write(points)
                bar.update(len(points))
        with fs.open(f"{root}/{fmt.COLLECTION}", "rb") as meta:
            store.update_metadata({k: v for k, v in json.loads(meta.read()).items() if k != "dims"})
        record_format(store)
        # indexes built now, as after an ingest or a migrate: the first search is not slow
        load.finish(manifest.get("indexes") or {})
        return load.points
    finally:
        store.close()


def _moved(path: str, old_uploads: str, new_uploads: str) -> str:
    """`path` in the restored uploads folder when it was in the backed-up one."""
    inside = old_uploads and path.startswith(old_uploads + "/")
    return new_uploads + path[len(old_uploads) :] if inside else path


def _restore_files(fs, root: str, manifest: dict, staging: Path, collection: str) -> None:
    """The watches, the job journal and the uploaded files, into the staged library folder."""
    for name in manifest["files"]:
        if name in (fmt.POINTS, fmt.COLLECTION):
            continue
        local = staging / (f"{collection}.watches.sqlite" if name == fmt.WATCHES else name)
        local.parent.mkdir(parents=True, exist_ok=True)
        with fs.open(f"{root}/{name}", "rb") as source, open(local, "wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
