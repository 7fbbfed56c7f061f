"""A server start warms the collection (engine.store.warm, Library.start_warming): /health says
"warming" until the store's files are read ahead and the encoders loaded, and searches are answered
meanwhile; `adsearch serve` starts it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
from helpers import copy_of_sample, free_port

from engine.store.warm import Warmup


def test_health_says_warming_until_the_warmup_is_done_and_searches_are_answered_meanwhile(
    api_library, api_server
):
    gate = threading.Event()
    api_library.warmup = Warmup(api_library.store.warm_files(), then=gate.wait).start()
    try:
        with httpx.Client(base_url=api_server, timeout=60) as http:
            health = http.get("/health").json()
            assert health["status"] == "warming" and health["warm"]["warming"]
            search = http.get("/api/search", params={"q": "sale", "k": 3})
            assert search.status_code == 200 and search.json()["hits"]
            gate.set()
            assert api_library.warmup.wait(30)
            health = http.get("/health").json()
            warm = health["warm"]
            assert health["status"] == "ok" and not warm["warming"] and warm["note"] == ""
            assert warm["read_mib"] == warm["total_mib"] > 0
    finally:
        gate.set()
        api_library.warmup = None
    with httpx.Client(base_url=api_server, timeout=60) as http:
        assert http.get("/health").json()["warm"] is None  # no start-up warming: nothing to say


def test_adsearch_serve_warms_the_store_and_the_encoders_at_start(tmp_path, settings, ingested):
    db = copy_of_sample(ingested, tmp_path / "db")
    port = free_port()
    env = {**os.environ, "ADSEARCH_CLIP_MODEL": str(settings.clip_model), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "engine.cli", "serve", "--port", str(port), "--db", str(db)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        health = _health_once_warm(server, f"http://127.0.0.1:{port}")
        warm = health["warm"]
        assert health["status"] == "ok" and health["images"] == ingested[0].count()
        assert warm["read_mib"] == warm["total_mib"] > 0 and warm["seconds"] > 0 and warm["note"] == ""
        answer = httpx.get(f"http://127.0.0.1:{port}/api/search", params={"q": "sale"}, timeout=60)
        assert answer.status_code == 200 and answer.json()["hits"]
    finally:
        server.terminate()
        server.wait(timeout=60)


def _health_once_warm(server: subprocess.Popen, url: str, timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert server.poll() is None, server.stdout.read().decode()[-3000:]
        try:
            health = httpx.get(f"{url}/health", timeout=5).json()
            if health["status"] == "ok":
                return health
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not finish warming")


def test_open_library_loads_the_encoders_while_the_store_opens(tmp_path, settings, ingested, encoders):
    from concurrent.futures import Future

    import pytest

    from engine.cli.common import open_library
    from engine.errors import UsageError
    from engine.library import Library

    own = settings.with_overrides(db=copy_of_sample(ingested, tmp_path / "db"))
    with open_library(own, need_collection=True) as library:
        loaded = library.encoders  # resolved before open_library returned: no Future left
        assert not isinstance(library._encoders, Future) and loaded is library.encoders
        assert library.encoders.dense is not None and library.encoders.clip is not None
    with pytest.raises(UsageError, match="does not exist"):  # the store's error first, loading or not
        open_library(settings.with_overrides(db=tmp_path / "empty"), need_collection=True)
    given: Future = Future()
    given.set_result(encoders)
    with Library(own, encoders=given) as library:
        assert library.encoders is encoders
