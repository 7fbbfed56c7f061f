"""Small helpers several test files share (imported as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import io
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager, suppress

from PIL import Image, ImageDraw


def png_bytes() -> bytes:
    """A small PNG no other test uploads (random colours and text): accepted, it would be ingested."""
    rng = random.Random(uuid.uuid4().int)
    image = Image.new("RGB", (200, 120), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 190, 110), outline=(0, 0, 0), width=3)
    draw.text((20, 50), f"SALE {rng.randrange(10**6)}", fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(app, lifespan: str = "auto"):
    """`app` under uvicorn on a free 127.0.0.1 port in a background thread; yields the port."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    server = uvicorn.Server(config)

    def run() -> None:
        with suppress(SystemExit):  # a failed startup (the caller then says so)
            server.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def served_client(app, timeout: float = 60, lifespan: str = "auto"):
    """An httpx client of `app` served by `serve` (real HTTP on a loopback port), closed after."""
    import httpx

    with (
        serve(app, lifespan) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout) as http,
    ):
        yield http


def adsearch(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run the `adsearch` console script as a user does (a subprocess, offline)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


# Debian's chromium for the browser tests (tests/browser/), headless, no network of its own
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def copy_of_sample(ingested, folder, file_date=None):
    """`folder` holding a closed copy of the ingested sample (no OCR, no encoding) with the payload
    indexes an ingest makes (a copy's metadata lists the source's indexes, so the copy is told it has
    none first); `file_date(n)`, when given, dates the n-th ad (ISO text) for the trend tests."""
    from engine.admin.migrate import copy_collection
    from engine.filters import BUILTIN_FIELDS
    from engine.store import EdgeStore

    with EdgeStore(folder, "ads") as store:
        copy_collection(ingested[0], store, progress=False)
        store.update_metadata({"indexes": {}})
        store.ensure_indexes({k: v for k, v in BUILTIN_FIELDS.items() if k != "has_text"})
        if file_date is not None:
            for number, (pid, _) in enumerate(list(store.scroll(fields=["sha256"]))):
                store.set_payload(pid, {"file_date": file_date(number)})
    return folder


def sample_images(sample_dir, folder, count: int):
    """`folder` made and holding the first `count` images of the sample (for a collection of its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((sample_dir / "images").iterdir())[:count]:
        shutil.copy(path, folder / path.name)
    return folder
