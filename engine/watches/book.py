"""The watch book: saved searches and the matches found for them, in one SQLite file beside the
store (`<db>/<collection>.watches.sqlite`), every change committed before it is reported."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import NotFound, SearchError
from engine.schema import SAVED_NAME_RULE, saved_name

MAX_WATCHES = 200
DEFAULT_TOP = 20  # a ranked watch matches a new ad that enters its top 20 over the whole collection
MAX_TOP = 1000
SCHEMA = """
CREATE TABLE IF NOT EXISTS watches (
    name TEXT PRIMARY KEY COLLATE NOCASE, query TEXT NOT NULL, clauses TEXT NOT NULL, mode TEXT NOT NULL,
    top INTEGER NOT NULL, created_at TEXT NOT NULL, checked_through TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS matches (
    watch TEXT NOT NULL COLLATE NOCASE, image_id TEXT NOT NULL, found_at TEXT NOT NULL,
    seen INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (watch, image_id)
);
"""


def now() -> str:
    """The current time as ingest stamps `ingested_at` (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Watch:
    """A saved search: a query and/or filter clauses in a mode; `top` for ranked watches."""

    name: str
    query: str = ""
    where: list[str] = field(default_factory=list)
    mode: str = "hybrid"
    top: int = DEFAULT_TOP
    created_at: str = ""
    checked_through: str = ""  # every ad ingested before this time has been checked

    def public(self) -> dict:
        return asdict(self)


def check_name(name: object) -> str:
    """A watch name as kept (engine.schema.saved_name), or SearchError saying what a name may hold."""
    kept = saved_name(name)
    if kept is None:
        raise SearchError(f"bad watch name {str(name).strip()[:80]!r}: {SAVED_NAME_RULE}")
    return kept


class WatchBook:
    """Watches and their matches; safe to use from several threads of one process."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a recorded match survives a crash
            self._db.executescript(SCHEMA)
        return self._db

    def add(self, watch: Watch) -> Watch:
        """Save a new watch; it matches ads ingested from now on."""
        watch.name = check_name(watch.name)
        watch.created_at = watch.checked_through = now()
        with self._lock:
            db = self._connection()
            if db.execute("SELECT count(*) FROM watches").fetchone()[0] >= MAX_WATCHES:
                raise SearchError(f"at most {MAX_WATCHES} watches")
            try:
                db.execute(
                    "INSERT INTO watches VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (watch.name, watch.query, json.dumps(watch.where), watch.mode, watch.top,
                     watch.created_at, watch.checked_through),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise SearchError(f"a watch named '{watch.name}' exists already") from None
        return watch

    def all(self) -> list[Watch]:
        with self._lock:
            rows = self._connection().execute("SELECT * FROM watches ORDER BY created_at, name").fetchall()
        return [_watch(row) for row in rows]

    def get(self, name: str) -> Watch:
        with self._lock:
            row = self._connection().execute("SELECT * FROM watches WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no watch named '{name[:80]}'")
        return _watch(row)

    def remove(self, name: str) -> None:
        self.get(name)
        with self._lock:
            db = self._connection()
            db.execute("BEGIN")
            db.execute("DELETE FROM matches WHERE watch = ?", (name,))
            db.execute("DELETE FROM watches WHERE name = ?", (name,))
            db.execute("COMMIT")

    def record(self, name: str, image_ids: list[str], checked_through: str) -> int:
        """Record matches (each once) and move the watch's mark, in one transaction; how many are new."""
        found = now()
        with self._lock:
            db = self._connection()
            db.execute("BEGIN")
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO matches (watch, image_id, found_at) VALUES (?, ?, ?)",
                [(name, image_id, found) for image_id in image_ids],
            )
            added = db.total_changes - before
            db.execute("UPDATE watches SET checked_through = ? WHERE name = ?", (checked_through, name))
            db.execute("COMMIT")
        return added

    def matches(self, name: str, limit: int = 100, mark_seen: bool = False) -> list[dict]:
        """The watch's matches, newest first: image id, when it was found, whether it was seen."""
        self.get(name)
        with self._lock:
            db = self._connection()
            rows = db.execute(
                "SELECT image_id, found_at, seen FROM matches WHERE watch = ? "
                "ORDER BY found_at DESC, image_id LIMIT ?",
                (name, limit),
            ).fetchall()
            if mark_seen:
                db.execute("UPDATE matches SET seen = 1 WHERE watch = ?", (name,))
        return [{"id": i, "found_at": f, "seen": bool(s)} for i, f, s in rows]

    def unseen(self) -> dict[str, int]:
        """Unseen matches per watch."""
        with self._lock:
            rows = (
                self._connection()
                .execute("SELECT watch, count(*) FROM matches WHERE seen = 0 GROUP BY watch")
                .fetchall()
            )
        return dict(rows)

    def forget_image(self, image_id: str) -> None:
        """Drop a deleted image's matches."""
        with self._lock:
            self._connection().execute("DELETE FROM matches WHERE image_id = ?", (image_id,))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _watch(row: tuple) -> Watch:
    name, query, clauses, mode, top, created_at, checked_through = row
    return Watch(name, query, json.loads(clauses), mode, top, created_at, checked_through)
