"""Observers: callbacks the engine calls when something happens (a search answered, a job ended),
so that a face can count it (api/metrics.py) without the engine knowing who listens or importing a
metrics library."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)


class Observers:
    """Bound methods called with an event's arguments. Each is held weakly: when its object goes
    (an app made by a test, then dropped), it stops being called. A failing observer is logged and
    never fails the work it observes."""

    def __init__(self) -> None:
        self._refs: tuple[weakref.WeakMethod, ...] = ()  # replaced whole: callers read it without a lock
        self._lock = threading.Lock()  # taken to change it

    def add(self, method: Callable[..., None]) -> None:
        """Call `method` (a bound method: it is held weakly) at every event from now on."""
        with self._lock:
            self._refs = (*self._refs, weakref.WeakMethod(method))

    def __len__(self) -> int:
        return sum(ref() is not None for ref in self._refs)

    def __call__(self, *args) -> None:
        dead = False
        for ref in self._refs:
            method = ref()
            if method is None:
                dead = True
                continue
            try:
                method(*args)
            except Exception:  # noqa: BLE001 (counting an event must not fail the event)
                log.exception("observer %r failed", method)
        if dead:
            with self._lock:
                self._refs = tuple(ref for ref in self._refs if ref() is not None)
