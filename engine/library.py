"""`Library`: one collection with its encoders, the single entry point the CLI and the API call.

It owns the store and the (lazily loaded) encoders, serialises writes, and adds what a user of a
collection needs beyond search: stored images and their OCR, thumbnails, uploads, delete, statistics.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from PIL import Image

from engine.config import TUNABLE, TUNED_FUSION, Settings
from engine.creative import THRESHOLD
from engine.errors import NotFound, SearchError
from engine.filters import BUILTIN_FIELDS, TEXT_FIELD, Clause, parse_where, split_query
from engine.images import decode_image
from engine.ingest import IngestHooks, IngestReport, ingest
from engine.jobs import UploadJobs
from engine.metadata import MetadataTable
from engine.schema import CHANNELS, CREATIVE_CHANNEL
from engine.search import Searcher, SearchResponse
from engine.sources import (
    SourcePolicy,
    display,
    is_remote,
    is_url,
    kept_original,
    local_names,
    read_bytes,
    write_atomically,
)
from engine.store import ChannelQuery, Store, open_store

THUMBNAIL_SIZES = (64, 128, 256, 512, 1024)
MAX_CLAUSES = 20
FACET_TYPES = ("keyword", "keywords", "integer")
SORT_TYPES = ("integer", "float", "datetime")
STATS_FIELDS = ["format", "width", "height", "bytes", "ocr_text", "ocr_confidence", "has_text"]
PIXEL_BUCKETS = [(0.25, "< 0.25 MP"), (0.5, "0.25-0.5 MP"), (1, "0.5-1 MP"), (2, "1-2 MP"), (4, "2-4 MP")]
BYTE_BUCKETS = [(50, "< 50 KB"), (200, "50-200 KB"), (1024, "0.2-1 MB")]
WORD_BUCKETS = [(0, "no text"), (5, "1-5 words"), (20, "6-20"), (50, "21-50"), (100, "51-100")]
CONFIDENCE_BUCKETS = [(b + 10, f"{b}-{b + 10}") for b in range(0, 90, 10)]
DUPLICATE_NEIGHBOURS = 50  # copies looked for per image when grouping duplicates
STATS_GROUPS = 20  # largest duplicate groups listed in the statistics
# Grouping duplicates takes one creative-channel search per image (~5 ms each): the statistics do it
# up to this many images (~10 min at most), above it they say so rather than take hours.
STATS_DUPLICATES_MAX = 100_000


def _bucket(value: float, buckets: list[tuple[float, str]], last: str) -> str:
    return next((label for limit, label in buckets if value <= limit), last)


class Library:
    """A collection and its encoders. Reads may run concurrently; one ingest runs at a time, and
    every store write (an ingest batch, a delete) takes `write_lock`, so a delete waits for at
    most one batch of a running ingest."""

    def __init__(self, settings: Settings, store: Store | None = None, encoders=None):
        self.settings = settings
        self.store = store or open_store(settings)
        self._encoders = encoders
        self._searcher: Searcher | None = None
        self._stats: dict | None = None
        self._load_lock = threading.Lock()
        self.write_lock = threading.Lock()
        self._ingest_lock = threading.Lock()
        self._indexes_made: set[tuple[str, str]] = set()
        self.data_dir = Path(settings.db).resolve()  # stored paths are absolute: compare like with like
        self.upload_dir = self.data_dir / "uploads"
        self.thumbnail_dir = self.data_dir / "thumbnails"
        self.jobs = UploadJobs(self)  # uploads: started by the server (`jobs.start()`), not by the CLI

    # ------------------------------------------------------------------ models and search

    @property
    def encoders(self):
        """The encoders, loaded on first use (CLIP falls back to text-only as load_encoders says)."""
        with self._load_lock:
            if self._encoders is None:
                from engine.encoders import load_encoders

                self._encoders = load_encoders(self.settings)
            return self._encoders

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = Searcher(self.search_settings(), self.encoders, self.store)
        return self._searcher

    def search_settings(self) -> Settings:
        """The settings search runs with: fusion defaults saved by `adsearch tune --save` applied."""
        return self.settings.with_tuned(self.store.metadata().get(TUNED_FUSION) if self.exists() else None)

    def exists(self) -> bool:
        return self.store.dims() is not None

    def search(
        self, query: str | None = None, image: Image.Image | None = None, where: Sequence[str] = (), **options
    ) -> SearchResponse:
        """Search by text and/or image among the images matching the `where` clauses (the filter
        language of engine.filters); no query and no image browses them (options `sort`, `descending`,
        `k`, `offset`). In the query, "a phrase" must appear in the OCR text word for word and -word
        must not appear. See Searcher.search for the other options."""
        if not self.exists():
            raise SearchError("the collection is empty: ingest some images first")
        clauses = self.parse_where(where)
        wording = split_query(query or "")
        if wording.clauses:
            self._ensure_index(TEXT_FIELD, "text")
            query, clauses = wording.text, [*clauses, *wording.clauses]
        if not (query or "").strip() and image is None:
            browse = {k: v for k, v in options.items() if k in ("sort", "descending", "k", "offset")}
            self._indexed(browse.get("sort", "ingested_at"), SORT_TYPES, "sort by")
            return self.searcher.browse(clauses, **browse)
        for browse_only in ("sort", "descending"):
            options.pop(browse_only, None)
        return self.searcher.search(query, image=image, where=clauses, **options)

    def similar(
        self, image_id: str, mode: str = "hybrid", k: int = 10, where: Sequence[str] = ()
    ) -> SearchResponse:
        """Images like a stored one (among those matching `where`)."""
        return self.searcher.similar(image_id, mode=mode, k=k, where=self.parse_where(where))

    def _indexed(self, field: str, types: tuple[str, ...], what: str) -> str:
        """The type of a field one can `what` (sort by, count values of), its payload index made if
        missing (Qdrant orders and counts through indexes); SearchError naming the fields one can."""
        kind = self.fields().get(field)
        if kind not in types:
            able = sorted(f for f, t in self.fields().items() if t in types)
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

    def fields(self) -> dict[str, str]:
        """Fields a filter may name: the built-in ones and the metadata declared at ingest (name -> type)."""
        return {**BUILTIN_FIELDS, **(self.store.metadata().get("fields") or {})}

    def parse_where(self, where: Sequence[str]) -> list[Clause]:
        """Filter clauses against this collection's fields; SearchError with the reason."""
        if len(where) > MAX_CLAUSES:
            raise SearchError(f"at most {MAX_CLAUSES} filter clauses")
        return parse_where(list(where), self.fields())

    def facets(self, field: str, where: Sequence[str] = (), limit: int = 20) -> dict:
        """How many images have each value of `field` among those matching `where`, most first."""
        kind = self._indexed(field, FACET_TYPES, "count values of")
        values = self.store.facet(field, self.parse_where(where), limit)
        # a deleted point can leave its value behind with a count of 0: not a value anyone has
        return {"field": field, "type": kind, "values": [{"value": v, "count": n} for v, n in values if n]}

    # ------------------------------------------------------------------ stored images

    def get(self, image_id: str) -> dict:
        """Payload of one image (metadata + OCR) or NotFound."""
        payload = self.store.retrieve([image_id]).get(image_id)
        if payload is None:
            raise NotFound(f"no image with id {image_id}")
        return payload

    def original(self, image_id: str) -> bytes:
        """The image's bytes as ingested: from the first of its paths that is still a regular file
        (not a link, FIFO or device) with the stored size and sha256; for a URL, the copy kept in
        <db>/originals at ingest (a request never makes the server fetch a URL), checked alike.
        NotFound saying why for each path when none is."""
        payload = self.get(image_id)
        reasons = []
        for path in payload.get("paths", []):
            try:
                return self._original_at(path, payload, image_id)
            except OSError as exc:
                reasons.append(f"{display(path)}: {exc.strerror or exc}")
        why = "; ".join(reasons) or "no path stored"
        raise NotFound(f"the original file of image {image_id} is not available ({why})")

    def _original_at(self, path: str, payload: dict, image_id: str) -> bytes:
        if is_remote(path):  # never fetched on a reader's request
            try:
                return _as_ingested(kept_original(self.data_dir, image_id), payload)
            except FileNotFoundError:
                raise OSError(errno.ENOENT, "no copy kept: ingest its source again to keep one") from None
        local = path.split("://", 1)[1] if is_url(path) else path
        *others, last = local_names(local)
        for name in others:  # the stored name as it is, then unescaped (sources.portable_name)
            with contextlib.suppress(FileNotFoundError):
                return _as_ingested(name, payload)
        return _as_ingested(last, payload)

    def thumbnail(self, image_id: str, size: int = 256) -> Path:
        """A JPEG thumbnail at most `size` px on its long side (rounded up to one of THUMBNAIL_SIZES,
        so a client cannot fill the cache with every size), made once from the verified original and
        cached on disk; concurrent requests each write a temporary file of their own."""
        size = next((s for s in THUMBNAIL_SIZES if s >= size), THUMBNAIL_SIZES[-1])
        target = self.thumbnail_dir / f"{image_id}-{size}.jpg"
        if not target.exists():
            image = decode_image(
                self.original(image_id), self.settings.max_image_pixels, reduce_to=size
            ).image
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            image.save(out, "JPEG", quality=85)
            write_atomically(target, out.getvalue())
        return target

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
        """Ingest files or folders (see engine.ingest); one ingest at a time, writes under write_lock.
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
        return report

    def delete(self, image_id: str) -> dict:
        """Remove an image's point and cancel its pending uploads; files are deleted only when they
        are uploads in our own folder that nothing else refers to."""
        with self.write_lock:
            payload = self.store.retrieve([image_id]).get(image_id)
            cancelled = self.jobs.cancel(image_id)
            if payload is None and not cancelled:
                raise NotFound(f"no image with id {image_id}")
            if payload is not None:
                self.store.delete([image_id])
            uploads = [f.stored for job in cancelled for f in self.jobs.get(job).files if f.id == image_id]
            candidates = list(dict.fromkeys([*(payload or {}).get("paths", []), *filter(None, uploads)]))
            removed = self.jobs.release(candidates)
            for thumb in self.thumbnail_dir.glob(f"{image_id}-*.jpg"):
                thumb.unlink(missing_ok=True)
            kept_original(self.data_dir, image_id).unlink(missing_ok=True)  # a URL image's copy
            self.invalidate_caches()
        return {"id": image_id, "deleted": payload is not None, "files_removed": removed,
                "cancelled_uploads": cancelled}  # fmt: skip

    def invalidate_caches(self) -> None:
        """Forget the searcher and statistics: after a write, or new tuned fusion defaults."""
        self._searcher = None  # channel availability may have changed
        self._stats = None

    # ------------------------------------------------------------------ statistics

    def stats(self) -> dict:
        """Counts and distributions over the whole collection (cached until the next write)."""
        if self._stats is not None:
            return self._stats
        meta = self.store.metadata()
        formats, pixels, sizes, words, confidence = Counter(), Counter(), Counter(), Counter(), Counter()
        total = with_text = 0
        for _, p in self.store.scroll(batch=512, fields=STATS_FIELDS):
            total += 1
            formats[p.get("format") or "?"] += 1
            pixels[_bucket((p.get("width", 0) * p.get("height", 0)) / 1e6, PIXEL_BUCKETS, "> 4 MP")] += 1
            sizes[_bucket(p.get("bytes", 0) / 1024, BYTE_BUCKETS, "> 1 MB")] += 1
            words[_bucket(len((p.get("ocr_text") or "").split()), WORD_BUCKETS, "> 100")] += 1
            if p.get("has_text"):
                with_text += 1
                confidence[_bucket(p.get("ocr_confidence", 0), CONFIDENCE_BUCKETS, "90-100")] += 1
        models = meta.get("models") or {}
        self._stats = {
            "collection": self.settings.collection,
            "backend": "qdrant-server" if self.settings.qdrant_url else "embedded",
            "images": total,
            "with_text": with_text,
            "without_text": total - with_text,
            "ocr_coverage": round(with_text / total, 4) if total else 0.0,
            "with_image_vector": self.store.count("image"),
            "formats": dict(formats.most_common()),
            "pixel_sizes": _ordered(pixels, [label for _, label in PIXEL_BUCKETS] + ["> 4 MP"]),
            "file_sizes": _ordered(sizes, [label for _, label in BYTE_BUCKETS] + ["> 1 MB"]),
            "text_words": _ordered(words, [label for _, label in WORD_BUCKETS] + ["> 100"]),
            "ocr_confidence": _ordered(confidence, [label for _, label in CONFIDENCE_BUCKETS] + ["90-100"]),
            "with_creative_vector": self.store.count(CREATIVE_CHANNEL),
            "duplicates": self._duplicate_stats(total),
            "visual": bool(meta.get("visual")),
            "channels": {c: (c != "image" or bool(meta.get("visual"))) for c in CHANNELS},
            "models": models,
            "pipeline": meta.get("pipeline"),
            "fusion": self._fusion(meta),
        }
        return self._stats

    def _fusion(self, meta: dict) -> dict:
        """The fusion settings search uses, and the `adsearch tune --save` record they came from."""
        used = self.settings.with_tuned(tuned := meta.get(TUNED_FUSION)).model_dump()
        applied = tuned and any(used[f] == tuned.get(f) for f in TUNABLE)
        return {**{f: used[f] for f in TUNABLE}, "tuned": tuned if applied else None}

    def duplicate_groups(self, neighbours: int = DUPLICATE_NEIGHBOURS) -> list[list[str]]:
        """Groups of 2+ images that are the same creative (creative vectors at or above the
        engine.creative threshold, linked transitively), largest first, ids sorted in each: one
        creative-channel search per image, at most `neighbours` copies each."""
        parent: dict[str, str] = {}

        def root(x: str) -> str:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for record in self.store._scroll(256, ["sha256"], with_vector=True):
            vector = (record.vector or {}).get(CREATIVE_CHANNEL)
            if vector is None:  # stored before the fingerprint: the next ingest adds it
                continue
            pid = str(record.id)
            query = ChannelQuery(CREATIVE_CHANNEL, list(vector))
            result = self.store.search([query], [1.0], neighbours + 1, 0, neighbours + 1, self.settings.rrf_k)
            for hit in result.fused:
                if hit.id != pid and hit.score >= THRESHOLD:
                    parent[root(hit.id)] = root(pid)
        groups: dict[str, list[str]] = {}
        for pid in list(parent):
            groups.setdefault(root(pid), []).append(pid)
        found = [sorted(g) for g in groups.values() if len(g) > 1]
        return sorted(found, key=lambda g: (-len(g), g[0]))

    def _duplicate_stats(self, images: int) -> dict:
        if images > STATS_DUPLICATES_MAX:
            return {
                "threshold": THRESHOLD,
                "groups": None,
                "images_in_groups": None,
                "largest": [],
                "skipped": f"not counted above {STATS_DUPLICATES_MAX:,} images (one search per image); "
                "one image's copies: `adsearch search --image FILE --mode duplicate` or its page",
            }
        groups = self.duplicate_groups()
        payloads = self.store.retrieve([g[0] for g in groups[:STATS_GROUPS]])
        return {
            "threshold": THRESHOLD,
            "groups": len(groups),
            "images_in_groups": sum(len(g) for g in groups),
            "largest": [
                {"size": len(g), "ids": g, "example": (payloads.get(g[0], {}).get("paths") or [None])[0]}
                for g in groups[:STATS_GROUPS]
            ],
        }

    def close(self) -> None:
        """Stop the upload runner (an unfinished job runs again at the next start), close the store."""
        self.jobs.stop()
        with self.write_lock:
            self.store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def query_image(data: bytes, settings: Settings) -> Image.Image:
    """A query image's bytes decoded under the pixel limit at the size a query uses: no more pixels
    than the largest OCR pass reads (CLIP and the fingerprint need fewer)."""
    return decode_image(data, settings.max_image_pixels, reduce_to=max(settings.ocr_scales)).image


def _as_ingested(location: str | Path, payload: dict) -> bytes:
    """The bytes of a local file when they are the image's ingested bytes (a regular file, not a
    link, with the stored size and sha256); OSError saying why otherwise."""
    size = payload.get("bytes") or 0
    try:
        data = read_bytes(location, SourcePolicy(max_bytes=size), follow_links=False)
    except OSError as exc:
        if exc.errno != errno.EFBIG:
            raise
        data = b""  # larger than it was: changed
    if len(data) != size or hashlib.sha256(data).hexdigest() != payload.get("sha256"):
        raise OSError(errno.EBADMSG, "changed since it was ingested (sha256 differs): not served")
    return data


def _ordered(counter: Counter, labels: list[str]) -> dict[str, int]:
    return {label: counter.get(label, 0) for label in labels}
