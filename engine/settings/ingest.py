"""How ingest runs: where (processes here or a Dask cluster), in what batches, on what input."""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from engine.settings.base import ENV_ONLY, Flag, Section, name_list

CLUSTER_HELP = (
    "decode, OCR and encode on a Dask cluster: its scheduler (tcp://host:8786; workers need "
    "adsearch installed and the files and models at the same paths), or local[:N] for N worker "
    "processes here. This machine writes the points to the store (--db or --qdrant-url)"
)


class IngestSection(Section):
    """The ingest settings; the first three are `ingest`'s flags (in this order)."""

    workers: Annotated[int, Flag("OCR worker processes (default: one per core)")] = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="OCR processes"
    )
    batch_size: Annotated[int, Flag("images per encoding/upsert batch (default 16)")] = Field(
        16, ge=1, le=1024, description="images per encoding/upsert batch"
    )
    cluster: Annotated[str | None, Flag(CLUSTER_HELP, metavar="ADDRESS")] = Field(
        None,
        description="run decode + OCR + encoding on a Dask cluster: its scheduler address "
        "(tcp://host:8786), or local[:N] for a cluster of N worker processes on this machine",
    )
    max_file_bytes: Annotated[int, ENV_ONLY] = Field(
        100 * 2**20, ge=1, description="larger files (and URLs) are refused before they are read"
    )
    url_schemes: Annotated[tuple[str, ...], NoDecode, ENV_ONLY] = Field(
        ("file", "s3", "gs", "http", "https"),
        description="URL schemes a source may use (comma-separated); local paths are always allowed",
    )
    url_timeout: Annotated[float, ENV_ONLY] = Field(
        30.0, gt=0, le=3600, allow_inf_nan=False, description="seconds per URL fetch"
    )
    max_image_pixels: Annotated[int, ENV_ONLY] = Field(
        120_000_000,
        ge=1,
        description="larger images are refused as decompression bombs, from their header before any "
        "decoding (Pillow's own limit is set to it)",
    )

    @field_validator("url_schemes", mode="before")
    @classmethod
    def _split_schemes(cls, value):
        return name_list(value, lambda name: name.lower().removesuffix("://"))

    @field_validator("cluster")
    @classmethod
    def _cluster_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        name, _, count = value.partition(":")
        if name == "local" and (not count or (count.isdigit() and 1 <= int(count) <= 256)):
            return value
        if name == "local" or "://" not in value and ":" not in value:
            raise ValueError(
                f"'{value}' is not local, local:N (1-256) or a scheduler address like tcp://host:8786"
            )
        return value

    @field_validator("workers")
    @classmethod
    def _workers_in_reach(cls, value: int) -> int:
        limit = max(32, 4 * (os.cpu_count() or 1))
        if value > limit:
            raise ValueError(f"at most {limit} worker processes on this machine (each loads the OCR models)")
        return value
