"""`Library`: one collection with its encoders, the single entry point the CLI and the API call.

It owns the store and the (lazily loaded) encoders, serialises writes, and adds what a user of a
collection needs beyond search: stored images and their OCR, thumbnails, uploads, delete, statistics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from functools import cached_property
from pathlib import Path

from PIL import Image

from engine.admin.removal import remove_image
from engine.admin.stats import DUPLICATE_NEIGHBOURS, collection_stats, duplicate_groups
from engine.boards import Boards
from engine.errors import NotFound, SearchError
from engine.filters import field_name
from engine.ingest.ingestor import IngestHooks, IngestReport, ingest
from engine.ingest.metadata import MetadataTable
from engine.jobs import UploadJobs
from engine.media.originals import Originals
from engine.observers import Observers
from engine.search import Searcher, SearchRequest, SearchResponse
from engine.search.answer import answer
from engine.search.encoding import QueryCache
from engine.search.fields import CollectionFields
from engine.search.like_board import like_board
from engine.settings import TUNED_FUSION, Settings
from engine.store import Store, open_store
from engine.store.warm import Warmup
from engine.watches import WatchBook, check_watches

WARM_QUERY = "new car sale"  # the search a server start runs once, to load and exercise every part


class Library:  # ~170 lines: one short delegation per operation the faces call, kept in one place
    """A collection and its encoders. Reads may run concurrently; one ingest runs at a time, and
    every store write (an ingest batch, a delete) takes `write_lock`, so a delete waits for at
    most one batch of a running ingest."""

    def __init__(self, settings: Settings, store: Store | None = None, encoders=None):
        self.settings = settings
        self.store = store or open_store(settings)
        self._encoders = encoders
        self._searcher: Searcher | None = None
        self.query_cache = QueryCache()  # outlives each Searcher; emptied when the collection changes
        self._stats: dict | None = None
        self._load_lock = threading.Lock()
        self.write_lock = threading.Lock()
        self._ingest_lock = threading.Lock()
        self.payload_fields = CollectionFields(self.store, self.write_lock)
        self.data_dir = Path(settings.db).resolve()  # stored paths are absolute: compare like with like
        self.upload_dir = self.data_dir / "uploads"
        self.originals = Originals(self.data_dir, settings.max_image_pixels)
        self.jobs = UploadJobs(self)  # uploads: started by the server (`jobs.start()`), not by the CLI
        self.watches = WatchBook(self.data_dir / f"{settings.collection}.watches.sqlite")
        # called with each answered search's `timings_ms` (search, similar, like_board): the server's metrics
        self.search_observers = Observers()
        self.warmup: Warmup | None = None  # a server's start-up warming (start_warming)

    # ------------------------------------------------------------------ models and search

    @property
    def encoders(self):
        """The encoders, loaded on first use (CLIP falls back to text-only as load_encoders says), or
        those a Future given to the constructor loads (open_library loads them while the store opens)."""
        with self._load_lock:
            if isinstance(self._encoders, Future):
                self._encoders = self._encoders.result()
            if self._encoders is None:
                from engine.models.encoders import load_encoders

                self._encoders = load_encoders(self.settings)
            return self._encoders

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = Searcher(self.search_settings(), self.encoders, self.store, self.query_cache)
        return self._searcher

    def search_settings(self) -> Settings:
        """The settings search runs with: fusion defaults saved by `adsearch tune --save` applied."""
        return self.settings.with_tuned(self.store.metadata().get(TUNED_FUSION) if self.exists() else None)

    def exists(self) -> bool:
        return self.store.dims() is not None

    def search(
        self, request: SearchRequest, image: Image.Image | None = None, snippets: bool = True
    ) -> SearchResponse:
        """Search by text (`request.q`) and/or image among the images matching `request.where` (the
        filter language of engine.filters); no query and no image browses them in `sort` order. In
        the query, "a phrase" must appear in the OCR text word for word and -word must not appear.
        Without `snippets` the hits carry no matched OCR line (ranking-only callers)."""
        if not self.exists():
            request.channel_weights()  # a bad weight is the first thing to say
            raise SearchError("the collection is empty: ingest some images first")
        return self._observed(answer(self.searcher, self.payload_fields, request, image, snippets))

    def similar(
        self, image_id: str, mode: str = "hybrid", k: int = 10, where: Sequence[str] = ()
    ) -> SearchResponse:
        """Images like a stored one (among those matching `where`)."""
        where_clauses = self.payload_fields.parse_where(where)
        return self._observed(self.searcher.similar(image_id, mode=mode, k=k, where=where_clauses))

    def _observed(self, response: SearchResponse) -> SearchResponse:
        """`response`, once `search_observers` have seen its stage timings."""
        self.search_observers(response.timings_ms)
        return response

    def facets(self, field: str, where: Sequence[str] = (), limit: int = 20) -> dict:
        """How many images have each value of `field` among those matching `where`, most first."""
        return self.payload_fields.facets(field_name(field, self.fields()), where, limit)

    def fields(self) -> dict[str, str]:
        """Fields a filter may name, with their types (engine.search.fields)."""
        return self.payload_fields.types()

    # ------------------------------------------------------------------ stored images

    def get(self, image_id: str) -> dict:
        """Payload of one image (metadata + OCR) or NotFound."""
        payload = self.store.retrieve([image_id]).get(image_id)
        if payload is None:
            raise NotFound(f"no image with id {image_id}")
        return payload

    def original(self, image_id: str) -> bytes:
        """The image's bytes exactly as ingested (engine.media.originals), or NotFound saying why."""
        return self.originals.read(image_id, self.get(image_id))

    def thumbnail(self, image_id: str, size: int = 256) -> Path:
        """A cached JPEG thumbnail at most about `size` px on its long side (engine.media.originals)."""
        return self.originals.thumbnail(image_id, size, self.get(image_id))

    # ------------------------------------------------------------------ writes

    def ingest(
        self,
        paths: Iterable[str | Path],
        on_error: Callable[[str, str], None] | None = None,
        progress: bool = False,
        hooks: IngestHooks | None = None,
        metadata: MetadataTable | None = None,
        here: bool = False,
    ) -> IngestReport:
        """Ingest files or folders (engine.ingest.ingestor); one ingest at a time, writes under write_lock.
        `here`: on this machine even when `settings.cluster` names a Dask cluster (files only this
        machine can read, such as uploads)."""
        hooks = hooks or IngestHooks()
        hooks.write_lock = self.write_lock
        settings = self.settings.model_copy(update={"cluster": None}) if here else self.settings
        with self._ingest_lock:
            encoders = lambda: self.encoders  # noqa: E731 (loaded only if this machine encodes)
            report = ingest(paths, settings, encoders, self.store, on_error, progress, hooks, metadata)
            with self.write_lock:
                self.invalidate_caches()
            report.watch_matches = check_watches(self)  # engine.watches.check: what "matches" means
        return report

    def delete(self, image_id: str) -> dict:
        """Remove an image's point, its pending uploads, watch matches and kept copy
        (engine.admin.removal); NotFound when there is nothing to remove."""
        return remove_image(self, image_id)

    def invalidate_caches(self) -> None:
        """Forget the searcher and statistics: after a write, or new tuned fusion defaults."""
        self._searcher = None  # channel availability may have changed
        self.query_cache.clear()
        self._stats = None

    # ------------------------------------------------------------------ statistics

    def stats(self) -> dict:
        """Counts and distributions over the whole collection (engine.admin.stats), cached until the
        next write."""
        if self._stats is None:
            self._stats = collection_stats(self.store, self.settings, self.duplicate_groups)
        return self._stats

    def duplicate_groups(self, neighbours: int = DUPLICATE_NEIGHBOURS) -> list[list[str]]:
        """Groups of 2+ images that are the same creative, largest first (engine.admin.stats)."""
        return duplicate_groups(self.store, self.settings.rrf_k, neighbours)

    def start_warming(self) -> Warmup:
        """Warm the collection for serving, in the background: the store's files read ahead
        (engine.store.warm), then the encoders loaded and one search run, so that no user's search
        is the slow first one. Searches are answered meanwhile; /health says "warming"."""
        self.warmup = Warmup(self.store.warm_files(), then=self._first_search).start()
        return self.warmup

    def _first_search(self) -> None:
        if self.exists():
            self.searcher.search(WARM_QUERY, k=1)

    def close(self) -> None:
        """Stop the upload runner (an unfinished job runs again at the next start), close the store."""
        self.jobs.stop()
        self.watches.close()
        with self.write_lock:
            self.store.close()

    # ------------------------------------------------------------------ boards (engine.boards)

    @cached_property
    def boards(self) -> Boards:
        """The collection's boards: create, list, info, ads (browsed), add, remove, delete, ids."""
        return Boards(self.store, self.write_lock, self.payload_fields)

    def like_board(
        self, name: str, mode: str = "hybrid", k: int = 10, where: Sequence[str] = ()
    ) -> SearchResponse:
        """Images like a board's ads, not on it (engine.search.like_board)."""
        board = self.boards.resolve(name)
        clauses = self.payload_fields.parse_where(where)
        return self._observed(like_board(self.searcher, board, self.boards.ids(board), mode, k, clauses))

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def trend(self, request) -> dict:
        """Counts per period of a date-time field for a query or several series (engine.analysis)."""
        from engine.analysis import trend

        if not self.exists():
            raise SearchError("the collection is empty: ingest some images first")
        return trend(self.payload_fields, lambda search: self.search(search, snippets=False), request)
