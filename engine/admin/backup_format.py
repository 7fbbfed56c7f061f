"""What a backup is made of (engine.admin.backup writes it, engine.admin.restore reads it): the file
names, the manifest with a sha256 per file, and the points as Parquet (one row per point: its id,
its payload as JSON, one column per dense vector and two per sparse one), a format any later
release, or pandas, can read whatever store engine wrote or will read it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator

import pyarrow as pa

from engine.errors import AdsearchError
from engine.schema import SparseVec
from engine.store.base import PointData

FORMAT = "adsearch-backup"
VERSION = 1
MANIFEST = "manifest.json"
POINTS = "points.parquet"
COLLECTION = "collection.json"  # the collection metadata: boards, saved tuning, models, format version
WATCHES = "watches.sqlite"
JOBS, UPLOADS = "jobs", "uploads"  # folders: the job journal and the uploaded files (pending or ingested)
ROW_GROUP = 1024


class BackupError(AdsearchError):
    """A backup that cannot be written, read, checked or restored as asked."""


def point_schema(dims: dict[str, int], sparse: Iterable[str]) -> pa.Schema:
    """The Parquet columns of a collection with these dense vectors (`dims`) and sparse ones."""
    fields = [pa.field("id", pa.string()), pa.field("payload", pa.string())]
    fields += [pa.field(f"{name}.vector", pa.list_(pa.float32())) for name in sorted(dims)]
    for name in sorted(sparse):
        fields += [pa.field(f"{name}.indices", pa.list_(pa.uint32())),
                   pa.field(f"{name}.values", pa.list_(pa.float32()))]  # fmt: skip
    return pa.schema(fields)


def point_table(points: list[PointData], schema: pa.Schema) -> pa.Table:
    """A batch of points as a table of `schema` (a point without a vector has null there)."""
    columns: dict[str, list] = {f.name: [] for f in schema}
    for point in points:
        columns["id"].append(point.id)
        columns["payload"].append(json.dumps(point.payload, ensure_ascii=False, allow_nan=False))
        for name in schema.names[2:]:
            channel, part = name.rsplit(".", 1)
            value = point.vectors.get(channel)
            if isinstance(value, SparseVec):
                columns[name].append(value.indices if part == "indices" else value.values)
            else:
                columns[name].append(value)
    return pa.table(columns, schema=schema)


def table_points(table: pa.Table) -> Iterator[PointData]:
    """The points of a table written by `point_table`."""
    names = table.schema.names[2:]
    for row in table.to_pylist():
        vectors: dict = {}
        for name in names:
            channel, part = name.rsplit(".", 1)
            if row[name] is None or part == "values":
                continue
            if part == "indices":
                vectors[channel] = SparseVec(row[name], row[f"{channel}.values"])
            else:
                vectors[channel] = row[name]
        yield PointData(row["id"], vectors, json.loads(row["payload"]))


class HashingWriter:
    """A write-only file object that passes bytes on to `target` and keeps their sha256 and size."""

    def __init__(self, target):
        self.target, self.sha256, self.bytes = target, hashlib.sha256(), 0
        self.closed = False

    def write(self, data) -> int:
        data = bytes(data)
        self.sha256.update(data)
        self.bytes += len(data)
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()

    def tell(self) -> int:
        return self.bytes

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def entry(self) -> dict:
        """The manifest's record of what went through."""
        return {"bytes": self.bytes, "sha256": self.sha256.hexdigest()}
