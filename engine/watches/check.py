"""What "matches" means, and the check that runs after every ingest.

- An **exact** watch (filter clauses and/or "quoted phrases" and -words, no free words) matches every
  ad ingested since its last check that satisfies all of them: a Qdrant filter, no ranking.
- A **ranked** watch (free words) matches a new ad when it is among the watch's top N over the whole
  collection (N = `top`, default 20), searched as `adsearch search` would.

Each watch keeps a mark: every ad ingested before it has been checked. The mark moves in the same
transaction that records the matches, and a match is recorded once per (watch, ad). A crash between
an ingest's write and its check loses nothing: the next check looks at every ad ingested since the
mark, and matches already recorded are not recorded again."""

from __future__ import annotations

from typing import Protocol

from engine.errors import SearchError
from engine.filters import free_words, split_query
from engine.search.fields import CollectionFields
from engine.search.request import SearchRequest
from engine.search.results import SearchResponse
from engine.store import Store
from engine.watches.book import Watch, WatchBook, now

MATCHING = (
    "A watch is checked after every ingest (CLI, cluster, upload job), against the ads that ingest "
    'stored. An exact watch (filter clauses, "quoted phrases", -words, no free words) matches every '
    "new ad that satisfies it; a ranked watch (free words) matches a new ad that enters its top N over "
    "the whole collection (default 20). Each match is recorded once, with the time it was found."
)
NEW_PAGE = 1000  # ads read per page while listing what was ingested since a mark


class WatchedLibrary(Protocol):
    """What a check needs of a library."""

    watches: WatchBook
    payload_fields: CollectionFields
    store: Store

    def exists(self) -> bool: ...
    def search(self, request: SearchRequest) -> SearchResponse: ...


def is_exact(watch: Watch) -> bool:
    """No free words: the watch is a filter (clauses, phrases, -words)."""
    return not free_words(watch.query)


def check_watches(library: WatchedLibrary) -> dict[str, int]:
    """Check every watch against the ads ingested since its mark; new matches per watch."""
    if not library.exists():
        return {}
    found = {}
    for watch in library.watches.all():
        mark = now()  # taken first: an ad written while this runs is looked at again next time
        try:
            ids = _matches(library, watch)
        except SearchError:  # a watch whose filter no longer fits the collection matches nothing
            ids = []
        found[watch.name] = library.watches.record(watch.name, ids, mark)
    return found


def _matches(library: WatchedLibrary, watch: Watch) -> list[str]:
    if is_exact(watch):
        return ingested_since(library, watch.checked_through, watch.where, watch.query)
    new = set(ingested_since(library, watch.checked_through))
    if not new:
        return []
    request = SearchRequest(q=watch.query, where=watch.where, mode=watch.mode).deeper(watch.top)
    return [hit.id for hit in library.search(request).hits if hit.id in new]


def ingested_since(library: WatchedLibrary, mark: str, where: list[str] = (), phrases: str = "") -> list[str]:
    """Every ad ingested at or after `mark` matching the clauses `where` and the "phrases" and
    -words of `phrases`, oldest first (Qdrant filter and order, a page at a time)."""
    fields = library.payload_fields
    clauses = fields.parse_where([*where, f"ingested_at>={mark}"])
    wording = split_query(phrases)
    if wording.clauses:
        fields.text_indexed()
        clauses += wording.clauses
    fields.sortable("ingested_at")
    ids: list[str] = []
    while page := library.store.browse(clauses, "ingested_at", False, NEW_PAGE, len(ids)):
        ids += [pid for pid, _ in page]
        if len(page) < NEW_PAGE:
            break
    return ids
