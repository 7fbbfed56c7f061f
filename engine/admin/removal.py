"""Removing one image from a library: its point, its pending uploads, its files when they are our own
uploads nothing else refers to, its kept original and thumbnails, its watch matches."""

from __future__ import annotations

import threading
from typing import Protocol

from engine.errors import NotFound
from engine.jobs import UploadJobs
from engine.media.originals import Originals
from engine.store import Store
from engine.watches import WatchBook


class Removable(Protocol):
    """What removing an image touches in a library."""

    store: Store
    jobs: UploadJobs
    originals: Originals
    watches: WatchBook
    write_lock: threading.Lock

    def invalidate_caches(self) -> None: ...


def remove_image(library: Removable, image_id: str) -> dict:
    """Remove the image and cancel its pending uploads, under the write lock; what was done."""
    with library.write_lock:
        payload = library.store.retrieve([image_id]).get(image_id)
        cancelled = library.jobs.cancel(image_id)
        if payload is None and not cancelled:
            raise NotFound(f"no image with id {image_id}")
        if payload is not None:
            library.store.delete([image_id])
        uploads = [f.stored for job in cancelled for f in library.jobs.get(job).files if f.id == image_id]
        candidates = list(dict.fromkeys([*(payload or {}).get("paths", []), *filter(None, uploads)]))
        removed = library.jobs.release(candidates)
        library.originals.forget(image_id)
        library.watches.forget_image(image_id)
        library.invalidate_caches()
    return {"id": image_id, "deleted": payload is not None, "files_removed": removed,
            "cancelled_uploads": cancelled}  # fmt: skip
