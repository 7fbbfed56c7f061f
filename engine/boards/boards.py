"""`Boards`: the boards of one collection. Their definitions (name, description, creation time, the
next addition number) are kept in the collection metadata under METADATA_KEY, so `migrate` carries
them; membership is the payload field BOARDS_FIELD on each ad (a keyword list with a payload index),
so filters and facets count inside Qdrant, and a re-ingest keeps it like every field ingest does not
write. ORDER_FIELD records when each ad joined each board (a number per board), for "the most
recently added". Every write takes the library's write lock."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from engine.boards.names import (
    MAX_BOARD_ADS,
    MAX_BOARDS,
    MAX_IDS_PER_CALL,
    BoardError,
    check_description,
    check_name,
    key,
)
from engine.errors import NotFound, SearchError
from engine.filters import Clause
from engine.schema import BOARDS_FIELD
from engine.search.browse import browse
from engine.search.fields import CollectionFields
from engine.search.request import DEFAULT_SORT, ID_PATTERN, MAX_HITS, MAX_OFFSET
from engine.search.results import SearchResponse
from engine.store import Store

METADATA_KEY = "boards"  # collection metadata: {name: {description, created_at, next}}
ORDER_FIELD = "boards_added"  # payload: {board name: its addition number on that board}
_ID = re.compile(ID_PATTERN)


class Boards:
    """Create, list, fill, empty and delete the boards of the collection in `store`."""

    def __init__(self, store: Store, write_lock: threading.Lock, fields: CollectionFields):
        self.store = store
        self.write_lock = write_lock
        self.fields = fields

    # ------------------------------------------------------------------ reads

    def definitions(self) -> dict[str, dict]:
        """name -> {description, created_at, next} of every board."""
        self._require_collection()
        return dict(self.store.metadata().get(METADATA_KEY) or {})

    def resolve(self, name: object) -> str:
        """The board a name means (case does not count); BoardError for a bad name, NotFound if none."""
        wanted = key(check_name(name))
        found = next((n for n in self.definitions() if key(n) == wanted), None)
        if found is None:
            raise NotFound(f"no board named {check_name(name)!r}")
        return found

    def list(self) -> list[dict]:
        """Every board with its number of ads (one facet call), by name."""
        defs = self.definitions()
        counts = {}
        if defs:
            facet = self.fields.facets(BOARDS_FIELD, (), limit=MAX_BOARDS)
            counts = {row["value"]: row["count"] for row in facet["values"]}
        return [_public(n, d, counts.get(n, 0)) for n, d in sorted(defs.items(), key=lambda i: key(i[0]))]

    def info(self, name: object) -> dict:
        """One board: name, description, creation time, number of ads (a Qdrant count)."""
        board = self.resolve(name)
        return _public(board, self.definitions()[board], self.store.count(where=self.clauses(board)))

    def where(self, name: object) -> str:
        """A board's ads as a filter clause in the filter language (`--where`, `where=`)."""
        return f"{BOARDS_FIELD}={self.resolve(name)}"

    def ads(
        self, name: object, k: int = 10, offset: int = 0, sort: str = DEFAULT_SORT, descending: bool = True
    ) -> SearchResponse:
        """A page of a board's ads, browsed as any filtered set is (engine.search.browse): no models."""
        board = self.resolve(name)
        if not (1 <= k <= MAX_HITS and 0 <= offset <= MAX_OFFSET):
            raise BoardError(f"k is 1 to {MAX_HITS} and offset 0 to {MAX_OFFSET}")
        self.fields.sortable(sort)
        return browse(self.store, self.clauses(board), sort, descending, k, offset)

    def clauses(self, board: str) -> list[Clause]:
        """The filter selecting a board's ads (`board=NAME` in the filter language)."""
        return [Clause(BOARDS_FIELD, "=", board)]

    def ids(self, name: object) -> list[str]:
        """The ids of a board's ads in the order they were added, oldest first (export reads this)."""
        self._indexed()
        board = self.resolve(name)
        return [pid for pid, _ in self._members(board)]

    # ------------------------------------------------------------------ writes

    def create(self, name: object, description: object = "") -> dict:
        """A new board; BoardError when the name is bad or taken (case does not count)."""
        name, description = check_name(name), check_description(description)
        with self.write_lock:
            defs = self.definitions()
            taken = next((n for n in defs if key(n) == key(name)), None)
            if taken is not None:
                raise BoardError(f"a board named {taken!r} exists already")
            if len(defs) >= MAX_BOARDS:
                raise BoardError(f"at most {MAX_BOARDS} boards: delete one first")
            created = datetime.now(UTC).isoformat(timespec="seconds")
            defs[name] = {"description": description, "created_at": created, "next": 0}
            self.store.ensure_indexes({BOARDS_FIELD: "keywords"})
            self.store.update_metadata({METADATA_KEY: defs})
        return _public(name, defs[name], 0)

    def add(self, name: object, ids: Iterable[object]) -> dict:
        """Put stored images on a board (those on it already stay where they are in its order);
        BoardError naming an unknown id, and then nothing is added."""
        ids = _checked_ids(ids)
        self._indexed()
        with self.write_lock:
            board = self.resolve(name)
            stored = self.store.retrieve(ids)
            missing = [i for i in ids if i not in stored]
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise BoardError(f"no image with id {missing[0]}{more}: nothing added to {board!r}")
            new = [i for i in ids if board not in _names(stored[i])]
            members = self.store.count(where=self.clauses(board))
            if members + len(new) > MAX_BOARD_ADS:
                raise BoardError(f"a board holds at most {MAX_BOARD_ADS} ads; {board!r} has {members}")
            defs = self.definitions()
            first = int(defs[board].get("next", 0))
            defs[board] = {**defs[board], "next": first + len(new)}
            self.store.update_metadata({METADATA_KEY: defs})  # first: a number is never given twice
            for number, pid in enumerate(new, first):
                order = {**_order(stored[pid]), board: number}
                self.store.set_payload(pid, {BOARDS_FIELD: [*_names(stored[pid]), board], ORDER_FIELD: order})
        return {"board": board, "added": new, "already": [i for i in ids if i not in new]}

    def remove(self, name: object, ids: Iterable[object]) -> dict:
        """Take images off a board (the images stay in the collection)."""
        ids = _checked_ids(ids)
        with self.write_lock:
            board = self.resolve(name)
            stored = self.store.retrieve(ids)
            removed = [i for i in ids if i in stored and board in _names(stored[i])]
            for pid in removed:
                self._take_off(pid, stored[pid], board)
        return {"board": board, "removed": removed, "not_on_board": [i for i in ids if i not in removed]}

    def delete(self, name: object) -> dict:
        """Delete a board: its name goes from every ad's boards first (a rerun after a crash finishes
        the job), then its definition; the images stay."""
        self._indexed()
        with self.write_lock:
            board = self.resolve(name)
            members = self._members(board)
            for pid, payload in members:
                self._take_off(pid, payload, board)
            defs = self.definitions()
            del defs[board]
            self.store.update_metadata({METADATA_KEY: defs})
        return {"deleted": board, "ads": len(members)}

    # ------------------------------------------------------------------ helpers

    def _members(self, board: str) -> list[tuple[str, dict]]:
        """(id, payload) of a board's ads in the order they were added."""
        rows = self.store.browse(self.clauses(board), DEFAULT_SORT, False, MAX_BOARD_ADS, 0)
        return sorted(rows, key=lambda row: (_order(row[1]).get(board, MAX_BOARD_ADS * 1000), row[0]))

    def _take_off(self, pid: str, payload: dict, board: str) -> None:
        order = {n: v for n, v in _order(payload).items() if n != board}
        self.store.set_payload(
            pid, {BOARDS_FIELD: [n for n in _names(payload) if n != board], ORDER_FIELD: order}
        )

    def _indexed(self) -> None:
        """The payload index listing a board's members reads through, made if missing (before the
        write lock: making one takes it)."""
        self._require_collection()
        self.fields.sortable(DEFAULT_SORT)

    def _require_collection(self) -> None:
        if self.store.dims() is None:
            raise SearchError("the collection is empty: ingest some images first")


def _public(name: str, definition: dict, count: int) -> dict:
    return {"name": name, "description": definition.get("description", ""),
            "created_at": definition.get("created_at"), "count": count}  # fmt: skip


def _names(payload: dict) -> list[str]:
    value = payload.get(BOARDS_FIELD)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _order(payload: dict) -> dict[str, int]:
    value = payload.get(ORDER_FIELD)
    return {k: v for k, v in value.items() if isinstance(v, int)} if isinstance(value, dict) else {}


def _checked_ids(ids: Iterable[object]) -> list[str]:
    """Image ids as given, each once, in order; BoardError for a malformed one or too many."""
    given = list(ids)
    if not given:
        raise BoardError("give at least one image id")
    if len(given) > MAX_IDS_PER_CALL:
        raise BoardError(f"at most {MAX_IDS_PER_CALL} image ids at a time")
    bad = next((i for i in given if not isinstance(i, str) or not _ID.match(i)), None)
    if bad is not None:
        raise BoardError(f"{str(bad)[:80]!r} is not an image id (a UUID such as a search hit's id)")
    return list(dict.fromkeys(given))
