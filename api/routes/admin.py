"""Operator routes: POST /api/admin/backup. A backup is taken by the serving process itself (it holds
the embedded store), under the library's write lock, so it is consistent while the server keeps
answering searches; writes wait for it. It needs the API key when one is set and, with none set, a
loopback client: it writes to the server's disk (only under `--backup-dir`, in a folder of its own)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import LibraryDep, require_key
from api.metrics import is_loopback
from engine.admin.backup import backup_library
from engine.errors import SearchError
from engine.library import Library
from engine.schema import MAX_NAME_CHARS, SAVED_NAME_RULE, saved_name


class BackupBody(BaseModel):
    """A backup to take: its folder's name under the backup folder (default: the time, UTC)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=4 * MAX_NAME_CHARS, description=SAVED_NAME_RULE)


def operator(request: Request, _: Annotated[None, Depends(require_key)]) -> None:
    """The API key when one is set; with none set, only a loopback client."""
    client = request.client.host if request.client else None
    if not request.app.state.library.settings.api_key and not is_loopback(client):
        raise HTTPException(403, "admin routes answer loopback clients only, unless an API key is set")


def add_admin_routes(app: FastAPI, library: Library) -> None:
    """POST /api/admin/backup."""

    @app.post("/api/admin/backup", status_code=201, dependencies=[Depends(operator)])
    def backup(lib: LibraryDep, body: BackupBody | None = None) -> dict:
        """Back the library up into a new folder under the server's backup folder (`--backup-dir`,
        default `<db>/backups`); the manifest (counts, sha256 per file) and where it went."""
        name = (body.name if body else None) or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        if saved_name(name) != name:
            raise SearchError(f"bad backup name {name[:80]!r}: {SAVED_NAME_RULE}")
        root = str(lib.settings.backup_dir or lib.data_dir / "backups").rstrip("/")
        manifest = backup_library(lib, f"{root}/{name}")
        return {"backup": f"{root}/{name}", **manifest}
