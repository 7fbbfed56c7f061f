"""The fields of one collection a search may name: filter clauses checked against them, the payload
indexes Qdrant sorts and counts through (made once per process), and value counts (facets)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from engine.errors import SearchError
from engine.filters import BUILTIN_FIELDS, TEXT_FIELD, Clause, parse_where
from engine.search.request import MAX_CLAUSES
from engine.store import Store

FACET_TYPES = ("keyword", "keywords", "integer")
SORT_TYPES = ("integer", "float", "datetime")


class CollectionFields:
    """The built-in and metadata fields of a store, and the indexes made over them; index writes
    take the library's `write_lock`."""

    def __init__(self, store: Store, write_lock: threading.Lock):
        self.store = store
        self.write_lock = write_lock
        self._indexes_made: set[tuple[str, str]] = set()

    def types(self) -> dict[str, str]:
        """Fields a filter may name: the built-in ones and the metadata declared at ingest (name -> type)."""
        return {**BUILTIN_FIELDS, **(self.store.metadata().get("fields") or {})}

    def parse_where(self, where: Sequence[str]) -> list[Clause]:
        """Filter clauses against this collection's fields; SearchError with the reason."""
        if len(where) > MAX_CLAUSES:
            raise SearchError(f"at most {MAX_CLAUSES} filter clauses")
        return parse_where(list(where), self.types())

    def sortable(self, field: str) -> str:
        """The type of a field to browse by, its index made if missing; SearchError naming the ones
        one can."""
        return self._indexed(field, SORT_TYPES, "sort by")

    def text_indexed(self) -> None:
        """The full-text index phrase and -word clauses filter through."""
        self._ensure_index(TEXT_FIELD, "text")

    def facets(self, field: str, where: Sequence[str] = (), limit: int = 20) -> dict:
        """How many images have each value of `field` among those matching `where`, most first."""
        kind = self._indexed(field, FACET_TYPES, "count values of")
        values = self.store.facet(field, self.parse_where(where), limit)
        # a deleted point can leave its value behind with a count of 0: not a value anyone has
        return {"field": field, "type": kind, "values": [{"value": v, "count": n} for v, n in values if n]}

    def _indexed(self, field: str, types: tuple[str, ...], what: str) -> str:
        """The type of a field one can `what` (sort by, count values of), its payload index made if
        missing (Qdrant orders and counts through indexes); SearchError naming the fields one can."""
        known = self.types()
        kind = known.get(field)
        if kind not in types:
            able = sorted(f for f, t in known.items() if t in types)
            raise SearchError(f"cannot {what} '{field}'; fields one can {what}: {', '.join(able)}")
        self._ensure_index(field, kind)
        return kind

    def _ensure_index(self, field: str, kind: str) -> None:
        """Make a payload index once per process: reads then skip the store round trip."""
        if (field, kind) in self._indexes_made:
            return
        with self.write_lock:
            self.store.ensure_indexes({field: kind})
        self._indexes_made.add((field, kind))
