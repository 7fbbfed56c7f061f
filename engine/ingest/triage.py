"""The triage of found files, a chunk at a time: read and hash each one; those stored by this
pipeline are brought up to date in place (a new path, metadata, missing built-ins: no OCR, no
encoding); the others go on to be processed, with what can be kept of a stored point."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from engine.ingest.executors import Pending
from engine.ingest.executors.base import unreadable
from engine.ingest.metadata import INGEST_PAYLOAD_KEYS, MetadataTable
from engine.ingest.run import Run
from engine.ingest.writer import keep_copy
from engine.media.sources import Source, SourcePolicy, is_remote, modified, read_bytes, stored_path
from engine.schema import point_id, stored_ocr

# Built-ins ingest writes that a re-processed point keeps as stored (its folder and file date stay
# those it was stored with); every payload key ingest does not write is kept too.
KEPT_BUILTINS = {"folder", "file_date"}


class Triage:
    """Sorts the files of a run (read under `policy`, with the rows of `metadata`), recording the
    paths and metadata of the points to (re)process in the run, for the writer."""

    def __init__(self, run: Run, policy: SourcePolicy, metadata: MetadataTable | None):
        self.run = run
        self.policy = policy
        self.metadata = metadata

    def sort(self, files: list[Source]) -> list[Pending]:
        """Hash files; skip those stored with this pipeline (adding new paths and fields); return the rest."""
        hashed = self._hashed(files)
        with self.run.hooks.writing():
            return self._split_stored(hashed)

    def _hashed(self, files: list[Source]) -> list[tuple[Pending, dict]]:
        """Each readable file as a Pending (with its metadata row's fields); the others fail."""
        hashed = []
        for found in files:
            if found.error:
                self.run.progress.fail(found.location, found.error)
                continue
            try:
                data = read_bytes(found.location, self.policy)
                mtime = modified(found.location)
            except OSError as exc:
                self.run.progress.fail(found.location, unreadable(exc))
                continue
            sha = hashlib.sha256(data).hexdigest()
            item = Pending(found.location, sha, len(data), folder=found.folder, file_date=file_date(mtime))
            if is_remote(found.location):
                item.data = data
            hashed.append((item, self.metadata.for_file(found.relative, sha) if self.metadata else {}))
        return hashed

    def _split_stored(self, hashed: list[tuple[Pending, dict]]) -> list[Pending]:
        """Record new paths and fields of images already stored by this pipeline; return the others."""
        stored = self.run.store.retrieve([point_id(p.sha256) for p, _ in hashed])
        todo = []
        for item, metadata in hashed:
            pid = point_id(item.sha256)
            path = stored_path(item.path)
            payload = stored.get(pid)
            if pid in self.run.paths:  # same bytes seen earlier in this run
                self._add_path(pid, path, metadata)
                self.run.report.new_paths += 1
                self.run.progress.advance(1)
            elif payload and self._up_to_date(payload):
                self._update_stored(pid, payload, item, path, metadata)
                keep_copy(self.run.db, pid, item)  # stored before copies were kept
                self.run.progress.advance(1)
            else:
                todo.append(self._to_process(pid, item, path, payload, metadata))
        return todo

    def _to_process(
        self, pid: str, item: Pending, path: str, payload: dict | None, metadata: dict
    ) -> Pending:
        """A file to (re)process: its point's paths and metadata noted; of a stored point, what
        ingest does not write (metadata, built-ins) kept, and its OCR when still valid."""
        known = payload.get("paths", []) if payload else []
        self.run.paths[pid] = [*known, path] if path not in known else list(known)
        self.run.metadata[pid] = dict(metadata)
        if payload:
            item.keep = {
                k: v for k, v in payload.items() if k not in INGEST_PAYLOAD_KEYS or k in KEPT_BUILTINS
            }
            if self._same_ocr(payload):
                item.known_ocr = stored_ocr(payload)
        return item

    def _update_stored(self, pid: str, payload: dict, item: Pending, path: str, metadata: dict) -> None:
        """A point stored by this pipeline: add the path, missing built-ins and changed metadata, in
        one write; no OCR, no encoding."""
        changes = {k: v for k, v in metadata.items() if payload.get(k) != v}
        for name, value in (("folder", item.folder), ("file_date", item.file_date)):
            if name not in payload and value:  # stored by a version without it (a date, if known)
                changes[name] = value
        new_path = path not in payload.get("paths", [])
        if new_path:
            changes["paths"] = [*payload.get("paths", []), path]
            self.run.report.new_paths += 1
        else:
            self.run.report.unchanged += 1
        if changes:
            self.run.store.set_payload(pid, changes)
            payload.update(changes)  # the same point may come again in this chunk under another path
        if set(changes) - {"paths"}:
            self.run.report.metadata_updated += 1

    def _up_to_date(self, payload: dict) -> bool:
        """Made by this pipeline, with every reader having read it (a reader that failed on the
        image last time gets another try)."""
        same = payload.get("pipeline", {}).get("signature") == self.run.pipeline["signature"]
        return same and not payload.get("ocr_errors")

    def _same_ocr(self, payload: dict) -> bool:
        """The stored OCR can be reused: same OCR settings and Tesseract, and no reader failed."""
        pipeline = payload.get("pipeline", {})
        return (
            pipeline.get("ocr") == self.run.pipeline["ocr"]
            and pipeline.get("tesseract") == self.run.pipeline["tesseract"]
            and not payload.get("ocr_errors")
        )

    def _add_path(self, pid: str, path: str, metadata: dict) -> None:
        """Another path of a point processed in this run; its metadata rows merge into the point's."""
        known = self.run.paths[pid]
        merged = self.run.metadata.setdefault(pid, {})
        changed = {k: v for k, v in metadata.items() if merged.get(k) != v}
        if path in known and not changed:
            return
        if path not in known:
            known.append(path)
        merged.update(changed)
        stored = self.run.store.retrieve([pid])
        if pid in stored:  # already written in an earlier batch of this run
            paths = sorted(set(stored[pid].get("paths", [])) | set(known))
            self.run.store.set_payload(pid, {"paths": paths, **changed})


def file_date(mtime: float | None) -> str:
    """A file's modification time as RFC 3339 UTC text (how datetime fields are stored); "" unknown."""
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds") if mtime is not None else ""
