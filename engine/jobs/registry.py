"""The job kinds this process knows, by name; a journal record becomes a job of its kind here."""

from __future__ import annotations

import logging

from engine.jobs.base import UNFINISHED, UPLOAD, Job, JobKind

log = logging.getLogger(__name__)

_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> None:
    """Make a job kind known by its name (ValueError if the name is taken)."""
    if kind.name in _KINDS:
        raise ValueError(f"job kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind


def unregister(name: str) -> None:
    """Forget a job kind (tests that add their own)."""
    _KINDS.pop(name, None)


def kind_names() -> tuple[str, ...]:
    """The names of the registered job kinds, in registration order."""
    return tuple(_KINDS)


def job_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unknown job kind {name!r}; known: {', '.join(_KINDS)}") from None


def load_job(record: dict) -> Job:
    """The job a journal record describes. A record of a kind not registered here becomes a stand-in
    that says why it does not run (interrupted, unless it had finished); the journal keeps the record,
    so the job runs at a later start that knows its kind."""
    name = record.get("kind", UPLOAD)
    try:
        kind = job_kind(name)
    except ValueError as exc:
        status = record.get("status", "queued")
        log.warning("job %s is of an unknown kind (%s): it does not run", record.get("id"), exc)
        return Job(
            id=record["id"], kind=name, created_at=record.get("created_at", ""),
            status="interrupted" if status in UNFINISHED else status, error=str(exc),
        )  # fmt: skip
    return kind.load({**record, "kind": name})
