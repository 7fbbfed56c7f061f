"""The store backends open_store chooses from: each is a `StoreBackend` (when the settings ask for
it, how to open it), declared beside its `Store` (edge.py, client.py) and registered in
engine/store/__init__.py; another package adds one with `register_backend`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import StoreError
from engine.settings import Settings
from engine.store.base import Store


@dataclass(frozen=True)
class StoreBackend:
    """One way to keep the collection: `handles(settings)` says whether the settings name it (e.g. by
    `qdrant_url` or its scheme), `open(settings)` opens the store."""

    name: str
    handles: Callable[[Settings], bool]
    open: Callable[[Settings], Store]


_BACKENDS: dict[str, StoreBackend] = {}


def register_backend(backend: StoreBackend) -> None:
    """Make a backend known by its name (ValueError if the name is taken). A backend registered later
    is asked first, so one can take some settings over from a broader one (a URL scheme of its own
    from the Qdrant server backend, which takes every URL)."""
    if backend.name in _BACKENDS:
        raise ValueError(f"store backend {backend.name!r} is registered twice")
    _BACKENDS[backend.name] = backend


def unregister_backend(name: str) -> None:
    """Forget a backend (tests that add their own)."""
    _BACKENDS.pop(name, None)


def backend_names() -> tuple[str, ...]:
    """The registered backends' names, in registration order."""
    return tuple(_BACKENDS)


def backend_for(settings: Settings) -> StoreBackend:
    """The most recently registered backend that handles these settings."""
    for backend in reversed(_BACKENDS.values()):
        if backend.handles(settings):
            return backend
    raise StoreError(f"no store backend handles these settings (known: {', '.join(_BACKENDS)})")
