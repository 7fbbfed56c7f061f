"""Copy a collection between stores (embedded folder <-> Qdrant server) without re-running OCR or
encoding: points are copied whole (every named vector and the payload, same ids), then metadata.

Safe to interrupt and rerun: ids are content hashes, so a rerun overwrites what was copied and adds
the rest; nothing is deleted in the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

from engine.errors import StoreError
from engine.store import Store
from engine.store.bulk import BulkLoad
from engine.store.format import record_format


@dataclass
class MigrateReport:
    copied: int
    source_count: int
    target_count: int


def copy_collection(source: Store, target: Store, batch: int = 256, progress: bool = True) -> MigrateReport:
    """Copy every point and the collection metadata of `source` into `target`."""
    from tqdm import tqdm

    dims = source.dims()
    if dims is None:
        raise StoreError(f"nothing to migrate: the source collection '{source.collection}' does not exist")
    total = source.count()
    target.ensure_collection(dims)
    load = BulkLoad(target)
    points = source.points(batch)
    with tqdm(total=total, unit="pt", disable=not progress, dynamic_ncols=True) as bar:
        while chunk := list(islice(points, batch)):
            load.write(chunk)
            bar.update(len(chunk))
    # metadata last: a target that says which models built it holds every point. The payload indexes
    # are made in the target (its own record of them says which it has), not copied as a record.
    meta = source.metadata()
    target.update_metadata({k: v for k, v in meta.items() if k not in ("dims", "indexes")})
    record_format(target)  # the points were written by this release, whatever wrote the source
    load.finish(meta.get("indexes") or {})
    return MigrateReport(load.points, total, target.count())
