"""The heavy payload fields of an embedded collection (base.SIDECAR_FIELDS: word boxes, raw OCR
text, pipeline record), in an SQLite file beside its Qdrant Edge shard.

Why not in Qdrant's payload, and the write order that keeps the two in step, are in EdgeStore's
docstring and docs/decisions.md. One row per point that has any of the fields; each field a
zlib-compressed JSON value (the word boxes shrink ~5x), so one field is read without the others.
"""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson

from engine.store.base import SIDECAR_FIELDS

_COLUMNS = {name: f"f_{name}" for name in SIDECAR_FIELDS}
MAX_VARIABLES = 900  # ids per SELECT/DELETE (SQLite's limit is at least 999)


def _encode(value) -> bytes:
    return zlib.compress(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS), 1)


def _decode(blob: bytes):
    return orjson.loads(zlib.decompress(blob))


class Sidecar:
    """id -> {field: value} for SIDECAR_FIELDS. The file is made on the first write, so a collection
    that never had one (made before the sidecar, or with no such fields) reads nothing from it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # the server reads and writes from several threads

    def _db(self, create: bool) -> sqlite3.Connection | None:
        if self._conn is None and (create or self.path.exists()):
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # committed rows survive a power cut, as the shard's
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: the id index of a million rows stays cached
            columns = ", ".join(f"{c} BLOB" for c in _COLUMNS.values())
            conn.execute(f"CREATE TABLE IF NOT EXISTS heavy (id TEXT PRIMARY KEY, {columns})")
            self._conn = conn
        return self._conn

    def replace(self, rows: dict[str, dict]) -> None:
        """Each point's sidecar fields become exactly these (a point given {} has none): one
        transaction, committed when this returns."""
        if not rows:
            return
        with self._lock:
            conn = self._db(create=True)
            names = ", ".join(_COLUMNS.values())
            marks = ", ".join("?" * (len(_COLUMNS) + 1))
            conn.execute("BEGIN")
            try:
                empty = [pid for pid, fields in rows.items() if not fields]
                self._delete(conn, empty)
                conn.executemany(
                    f"INSERT OR REPLACE INTO heavy (id, {names}) VALUES ({marks})",
                    [
                        (pid, *(_encode(fields[n]) if n in fields else None for n in _COLUMNS))
                        for pid, fields in rows.items()
                        if fields
                    ],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def update(self, point_id: str, fields: dict) -> None:
        """Set these sidecar fields of one point, keeping its others."""
        if fields:
            current = self.get([point_id]).get(point_id, {})
            self.replace({point_id: {**current, **fields}})

    def get(self, ids: Iterable[str], fields: Sequence[str] | None = None) -> dict[str, dict]:
        """id -> {field: value} for the ids with a row (`fields`: only those of SIDECAR_FIELDS)."""
        wanted = [n for n in _COLUMNS if fields is None or n in fields]
        ids = list(ids)
        out: dict[str, dict] = {}
        with self._lock:
            conn = self._db(create=False)
            if conn is None or not wanted or not ids:
                return out
            columns = ", ".join(_COLUMNS[n] for n in wanted)
            for start in range(0, len(ids), MAX_VARIABLES):
                chunk = ids[start : start + MAX_VARIABLES]
                marks = ", ".join("?" * len(chunk))
                for pid, *values in conn.execute(
                    f"SELECT id, {columns} FROM heavy WHERE id IN ({marks})", chunk
                ):
                    out[pid] = {n: _decode(v) for n, v in zip(wanted, values, strict=True) if v is not None}
        return out

    def delete(self, ids: Sequence[str]) -> None:
        with self._lock:
            conn = self._db(create=False)
            if conn is not None:
                self._delete(conn, list(ids))

    @staticmethod
    def _delete(conn: sqlite3.Connection, ids: list[str]) -> None:
        for start in range(0, len(ids), MAX_VARIABLES):
            chunk = ids[start : start + MAX_VARIABLES]
            conn.execute(f"DELETE FROM heavy WHERE id IN ({', '.join('?' * len(chunk))})", chunk)

    def count(self) -> int:
        with self._lock:
            conn = self._db(create=False)
            return conn.execute("SELECT COUNT(*) FROM heavy").fetchone()[0] if conn is not None else 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
