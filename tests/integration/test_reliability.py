"""Concurrent use and closed doors: a second process on the store, searches during an API ingest, CORS."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import threading

import httpx

from api.settings import ServeSettings
from engine.store import EdgeStore


def test_a_second_process_on_the_store_gets_a_clear_in_use_error(tmp_path):
    with EdgeStore(tmp_path / "db", "ads") as store:
        store.ensure_collection({"image": 4, "text": 4})
        result = subprocess.run(
            [sys.executable, "-m", "engine.cli", "stats", "--db", str(tmp_path / "db")],
            capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        assert result.returncode == 2
        assert f"in use by PID {os.getpid()}" in result.stderr and "Traceback" not in result.stderr
        assert store.count() == 0 and store.dims() == {"image": 4, "text": 4}  # untouched


def test_searches_stay_correct_while_an_upload_ingest_runs(api_server, truth):
    from dataset.synthetic import available_fonts, render_ad

    ad = next(a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"])
    uploads = []
    for seed in range(4):
        image, _ = render_ad(seed + 8, random.Random(1000 + seed), available_fonts())
        image.putpixel((1, 1), (seed, 9, 9))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        uploads.append(("files", (f"concurrent-{seed}.png", buffer.getvalue())))
    result = {}

    def upload():
        with httpx.Client(base_url=api_server, timeout=300) as client:
            result["response"] = client.post("/api/images?wait=true", files=uploads)

    writer = threading.Thread(target=upload)
    answers = []
    with httpx.Client(base_url=api_server, timeout=60) as client:
        writer.start()
        while writer.is_alive() or len(answers) < 5:
            response = client.get("/api/search", params={"q": ad["brand"], "mode": "keyword", "k": 1})
            answers.append((response.status_code, response.json()["hits"][0]["paths"][0].rsplit("/", 1)[-1]))
        writer.join()
        statuses = [r["status"] for r in result["response"].json()["results"]]
        for r in result["response"].json()["results"]:  # leave the shared collection as it was
            client.delete(f"/api/images/{r['id']}")
    assert statuses == ["ingested"] * 4
    assert {a for a in answers} == {(200, ad["file"].rsplit("/", 1)[-1])} and len(answers) >= 5


def test_cors_is_closed_and_the_server_binds_localhost_by_default(api_server):
    response = httpx.get(f"{api_server}/api/stats", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    preflight = httpx.options(
        f"{api_server}/api/images/00000000-0000-0000-0000-000000000000",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert ServeSettings().host == "127.0.0.1"
