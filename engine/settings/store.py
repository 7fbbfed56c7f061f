"""Where the collection lives: the embedded folder or a Qdrant server, and the layout of a new one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from engine.settings.base import ENV_ONLY, Flag, Section


class StoreSection(Section):
    """The store settings; the first six are the `store` flags of the commands that open a store."""

    db: Annotated[Path, Flag("embedded store folder (default ./adsearch-data)")] = Field(
        Path("adsearch-data"), description="folder of the embedded store"
    )
    collection: Annotated[str, Flag("collection name (default ads)")] = Field(
        "ads", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="letters, digits, _ and -"
    )
    qdrant_url: Annotated[
        str | None, Flag("use a Qdrant server, e.g. http://localhost:6333, instead of --db")
    ] = Field(None, description="use a Qdrant server instead of the embedded store")
    qdrant_api_key: Annotated[str | None, Flag("API key for the Qdrant server")] = None
    shard_number: Annotated[int | None, Flag("shards of a new collection on a Qdrant server/cluster")] = (
        Field(
            None,
            ge=1,
            description="shards of a new collection on a Qdrant server/cluster (default: server's)",
        )
    )
    replication_factor: Annotated[
        int | None, Flag("copies of each shard of a new collection on a Qdrant cluster")
    ] = Field(None, ge=1, description="copies of each shard on a Qdrant cluster (default: server's, 1)")
    # int8 copies of the dense vectors in RAM, float32 originals on disk, results rescored with the
    # originals: ~4x less RAM for the same top hits (bench/results/scale.md, docs/scaling.md).
    quantize: Annotated[bool, ENV_ONLY] = Field(
        True,
        description="a new collection keeps its dense vectors as int8 in RAM and float32 on disk "
        "(rescored search); an existing collection keeps the layout it was made with",
    )
    hnsw_ef: Annotated[int, ENV_ONLY] = Field(
        512, ge=1, le=100_000,
        description="search beam of the dense channels' HNSW graphs: larger finds more of the exact top "
        "10 and is slower; raise it for millions of ads (bench/results/scale.md)",
    )  # fmt: skip


# the flags a command that talks to a Qdrant server (migrate) takes besides its own --collection
SERVER_FLAGS = ("qdrant_api_key", "shard_number", "replication_factor")
