"""The HTTP server's settings (`adsearch serve`): the serve section, and ServeSettings, the engine's
Settings with it. The engine knows nothing of them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from engine.settings import ENV_ONLY, Flag, Section, Settings
from engine.settings.base import name_list

if TYPE_CHECKING:
    from engine.library import Library

ALLOWED_HOSTS_HELP = (
    "comma-separated Host names to answer besides 127.0.0.1, localhost, [::1] and the bound "
    "address, e.g. ads.example.org (env ADSEARCH_ALLOWED_HOSTS); other Host headers get 400, "
    "which stops DNS-rebinding attacks"
)
CONCURRENCY_HELP = (
    "requests worked on at once (default twice the cores, at least 4); the excess gets 503 with "
    "Retry-After at once"
)

LOG_FORMAT_HELP = (
    "access and job log lines on stderr: text (readable, key=value) or json (JSON Lines) "
    "(env ADSEARCH_LOG_FORMAT)"
)
LOG_QUERIES_HELP = (
    "put each request's query text (the q parameter) in its access log line; off by default: queries "
    "may be personal (env ADSEARCH_LOG_QUERIES)"
)

BACKUP_DIR_HELP = (
    "folder (or fsspec URL) where POST /api/admin/backup writes its backups, one folder each "
    "(default <db>/backups; env ADSEARCH_BACKUP_DIR)"
)


def _default_concurrency() -> int:
    # Searches are CPU-bound and hold the GIL in part: beyond ~2 per core, more in progress only makes
    # every answer (and health) later at the same throughput (bench/results/load.md, docs/decisions.md).
    return max(4, 2 * (os.cpu_count() or 1))


class ServeSection(Section):
    """Where the server listens, who may write, and how much one request and the server may take."""

    host: Annotated[str, Flag("address to bind (default 127.0.0.1; 0.0.0.0 for every interface)")] = Field(
        "127.0.0.1", description="address to bind; 0.0.0.0 exposes the server to the network"
    )
    port: Annotated[int, Flag("port (default 8000)")] = Field(8000, ge=1, le=65535)
    api_key: Annotated[str | None, ENV_ONLY] = Field(
        None, description="when set, write endpoints require it (X-API-Key header)"
    )
    max_upload_bytes: Annotated[int, ENV_ONLY] = Field(20 * 2**20, ge=1)
    max_upload_files: Annotated[int, ENV_ONLY] = Field(50, ge=1)
    max_query_chars: Annotated[int, ENV_ONLY] = Field(500, ge=1)
    allowed_hosts: Annotated[tuple[str, ...], NoDecode, Flag(ALLOWED_HOSTS_HELP)] = Field(
        (),
        description="Host header names the server answers besides the loopback names and the bound "
        "address (comma-separated; '*' answers any host, which re-opens DNS rebinding)",
    )
    max_concurrent_requests: Annotated[int, Flag(CONCURRENCY_HELP)] = Field(
        default_factory=_default_concurrency,
        ge=1,
        le=10_000,
        description="requests the server works on at once (searches, pages, uploads; default twice the "
        "cores, at least 4); more get 503 with Retry-After at once instead of queueing",
    )

    log_format: Annotated[Literal["text", "json"], Flag(LOG_FORMAT_HELP)] = Field(
        "text", description="access and job log lines (stderr): text (key=value) or json (JSON Lines)"
    )
    log_queries: Annotated[bool, Flag(LOG_QUERIES_HELP)] = Field(
        False, description="log the query text (q) of each request; never the API key or other parameters"
    )

    backup_dir: Annotated[Path | None, Flag(BACKUP_DIR_HELP)] = Field(
        None, description="where POST /api/admin/backup writes (default <db>/backups); a folder or fsspec URL"
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value):
        return name_list(value)

    def served_hosts(self) -> tuple[str, ...]:
        """Host names the HTTP server answers: loopback, the bound address, and `allowed_hosts`."""
        names = ["127.0.0.1", "localhost", "::1", self.host.lower().strip("[]"), *self.allowed_hosts]
        return tuple(dict.fromkeys(n for n in names if n not in ("0.0.0.0", "::")))


# pydantic lists the fields of the last base first: the engine's, then the server's
class ServeSettings(ServeSection, Settings):
    """The engine's Settings and the serve section: what `adsearch serve` and `create_app` run with."""

    @classmethod
    def serving(cls, settings: Settings) -> ServeSettings:
        """`settings` with the serve section added, read from the environment (as it is when `settings`
        already has it); what was set explicitly stays known as such."""
        if isinstance(settings, cls):
            return settings
        serve = ServeSection()
        made = cls.model_validate({**settings.model_dump(), **serve.model_dump()})
        made.__pydantic_fields_set__ = settings.model_fields_set | serve.model_fields_set
        return made


def served(library: Library) -> Library:
    """`library`, its settings given the serve section when it was opened with the engine's Settings."""
    library.settings = ServeSettings.serving(library.settings)
    return library
