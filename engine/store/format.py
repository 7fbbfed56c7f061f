"""The store format version, recorded in the collection metadata (`store_format`), and the rule a
release follows when it opens a collection: a format it knows is opened (an older one upgraded in
place first), a newer or unknown one is refused with one line saying what to do.

Format history:
- 0: collections written before the format was recorded (adsearch up to issue #23).
- 1: the same layout, with `store_format` recorded. Upgrading 0 -> 1 only records the number, so it
  needs no backup; an upgrade that rewrites points must back the collection up first
  (engine.admin.backup) and say so in UPGRADES."""

from __future__ import annotations

from collections.abc import Callable

from engine.errors import StoreError

FORMAT_KEY = "store_format"
STORE_FORMAT = 1


def _record_only(store) -> None:
    """0 -> 1: the layout is the same; only the version is recorded."""


# from-version -> the step that brings a collection to from-version + 1
UPGRADES: dict[int, Callable] = {0: _record_only}


def format_of(store) -> int:
    """The format the store's existing collection was written in (0: not recorded)."""
    value = store.metadata().get(FORMAT_KEY, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def check_format(store) -> None:
    """Open a collection of a known format, upgrading an older one in place; StoreError for a newer
    or unreadable one. A store without a collection yet is left alone (`record_format` stamps it)."""
    if store.dims() is None:
        return
    found = format_of(store)
    if found > STORE_FORMAT or found < 0:
        shown = found if found >= 0 else repr(store.metadata().get(FORMAT_KEY))
        raise StoreError(
            f"collection '{store.collection}' has store format {shown}, which this adsearch (format "
            f"{STORE_FORMAT}) cannot read: upgrade adsearch, or `adsearch restore` a backup made by this "
            "release into a new --db"
        )
    for version in range(found, STORE_FORMAT):
        UPGRADES[version](store)
        store.update_metadata({FORMAT_KEY: version + 1})


def record_format(store) -> None:
    """Stamp a collection this release has just created (ingest, migrate, restore) with its format."""
    store.update_metadata({FORMAT_KEY: STORE_FORMAT})
