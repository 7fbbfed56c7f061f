"""Backup and restore (issue 24): a restore equals the library it was taken from (points with every
vector and the sidecar's fields, boards, watches, saved tuning, uploads with their originals), a
backup taken while another thread writes holds no half-applied write, a damaged backup is refused,
and a restore never overwrites anything."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from helpers import adsearch, copy_of_sample, png_bytes, served_client

from api.app import create_app
from api.settings import ServeSettings
from engine.admin.backup import backup_library
from engine.admin.backup_format import BackupError
from engine.admin.restore import check_backup, restore_backup
from engine.library import Library
from engine.search import SearchRequest
from engine.watches import Watch


@pytest.fixture
def library(tmp_path, settings, encoders, ingested):
    db = copy_of_sample(ingested, tmp_path / "db")
    with Library(settings.with_overrides(db=db), encoders=encoders) as lib:
        yield lib


def everything(lib: Library) -> dict:
    """What a library holds, as comparable values."""
    points = {p.id: (p.payload, p.vectors) for p in lib.store.points()}
    watches = [(w.name, w.query, w.where, w.top) for w in lib.watches.all()]
    meta = {k: v for k, v in lib.store.metadata().items() if k not in ("indexes",)}
    return {"points": points, "boards": lib.boards.list(), "watches": watches, "meta": meta}


def test_a_restore_equals_the_library_it_was_taken_from(library, tmp_path, settings, encoders):
    ids = [h.id for h in library.search(SearchRequest(q="sale", k=5)).hits]
    library.boards.create("Keep", "for the deck")
    library.boards.add("Keep", ids[:3])
    library.watches.add(Watch("pngs", where=["format=PNG"]))
    manifest = backup_library(library, str(tmp_path / "backup"))
    assert manifest["counts"]["points"] == library.store.count() and manifest["counts"]["boards"] == 1
    assert check_backup(str(tmp_path / "backup"))["files"] == manifest["files"]

    restored = restore_backup(str(tmp_path / "backup"), settings.with_overrides(db=tmp_path / "new"))
    assert restored["points"] == library.store.count()
    with Library(settings.with_overrides(db=tmp_path / "new"), encoders=encoders) as copy:
        before, after = everything(library), everything(copy)
        assert after == before
        assert any(p["ocr_words"] for p, _ in after["points"].values())  # the sidecar's fields came too
        query = SearchRequest(q="sale", k=10)
        assert [(h.id, h.score) for h in copy.search(query).hits] == [
            (h.id, h.score) for h in library.search(query).hits
        ]
        assert [h.id for h in copy.boards.ads("Keep", 10).hits] == [
            h.id for h in library.boards.ads("Keep", 10).hits
        ]


def test_a_backup_taken_while_writes_go_on_holds_none_half_applied(library, tmp_path, settings):
    """A writer puts 5 ads on a board and takes them off again, over and over, each under the write
    lock; every backup holds the board with 0 or 5 of them, never a part."""
    ids = [pid for pid, _ in library.store.scroll()][:5]
    library.boards.create("Churn")
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            library.boards.add("Churn", ids)
            library.boards.remove("Churn", ids)

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        seen = []
        for n in range(6):
            backup_library(library, str(tmp_path / f"b{n}"))
            target = settings.with_overrides(db=tmp_path / f"r{n}")
            restore_backup(str(tmp_path / f"b{n}"), target)
            with Library(target) as copy:
                members = copy.boards.list()[0]["count"]
                assert members in (0, 5)
                assert all(
                    p.get("boards") in (None, [], ["Churn"]) for _, p in copy.store.scroll(fields=["boards"])
                )
                seen.append(members)
    finally:
        stop.set()
        writer.join()
    assert len(seen) == 6


def test_a_damaged_or_unfinished_backup_is_refused(library, tmp_path):
    folder = tmp_path / "backup"
    backup_library(library, str(folder))
    points = folder / "points.parquet"
    data = bytearray(points.read_bytes())
    data[len(data) // 2] ^= 0x01
    points.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="points.parquet differs from the manifest"):
        check_backup(str(folder))
    checked = adsearch("restore", "--check", str(folder))
    assert checked.returncode == 2 and checked.stderr.count("\n") == 1 and "differs" in checked.stderr
    (folder / "manifest.json").unlink()
    with pytest.raises(BackupError, match="no manifest.json: not a backup, or one that did not finish"):
        check_backup(str(folder))
    with pytest.raises(BackupError, match="is not empty"):
        backup_library(library, str(folder))  # a backup never writes over another


def test_a_restore_never_overwrites_and_a_crashed_one_is_run_again(library, tmp_path, settings):
    backup_library(library, str(tmp_path / "backup"))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(BackupError, match="is not empty"):
        restore_backup(str(tmp_path / "backup"), settings.with_overrides(db=taken))
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    stale = tmp_path / "new.restoring"  # what a restore killed half-way leaves
    stale.mkdir()
    (stale / "half").write_text("x")
    restored = restore_backup(str(tmp_path / "backup"), settings.with_overrides(db=tmp_path / "new"))
    assert restored["points"] == library.store.count() and not stale.exists()


def test_the_api_backs_up_a_served_library_with_its_uploads(tmp_path, settings, encoders, ingested):
    db = copy_of_sample(ingested, tmp_path / "db")
    own = ServeSettings.serving(settings).with_overrides(db=db, backup_dir=tmp_path / "backups")
    upload = png_bytes()
    with Library(own, encoders=encoders) as lib, served_client(create_app(lib), timeout=120) as http:
        job = http.post(
            "/api/images", params={"wait": "true"}, files={"files": ("new.png", upload, "image/png")}
        )
        uploaded = job.json()["results"][0]["id"]
        assert http.post("/api/admin/backup", json={"name": "../x"}).status_code == 422
        answer = http.post("/api/admin/backup", json={"name": "nightly"})
        assert answer.status_code == 201, answer.text
        assert answer.json()["backup"] == f"{tmp_path / 'backups'}/nightly"
        assert answer.json()["counts"]["uploads"] >= 1 and answer.json()["counts"]["jobs"] >= 1
        assert http.post("/api/admin/backup", json={"name": "nightly"}).status_code == 400  # never over one
    target = settings.with_overrides(db=tmp_path / "restored")
    restore_backup(str(tmp_path / "backups" / "nightly"), target)
    with Library(target) as copy:
        path = copy.get(uploaded)["paths"][0]
        assert path.startswith(str((tmp_path / "restored" / "uploads").resolve()))
        assert hashlib.sha256(copy.original(uploaded)).hexdigest() == hashlib.sha256(upload).hexdigest()


def test_the_admin_backup_needs_the_key_when_one_is_set(tmp_path, settings, encoders, ingested):
    db = copy_of_sample(ingested, tmp_path / "db")
    own = ServeSettings.serving(settings).with_overrides(db=db, api_key="s3cret")
    with Library(own, encoders=encoders) as lib, served_client(create_app(lib), timeout=120) as http:
        assert http.post("/api/admin/backup").status_code == 401
        assert not (db / "backups").exists()
        done = http.post("/api/admin/backup", headers={"X-API-Key": "s3cret"})
        assert done.status_code == 201 and (db / "backups").is_dir()


def distinct_pngs(count: int) -> list[tuple[str, bytes]]:
    """`count` small PNGs that differ (a word each), named up-00.png, up-01.png, ..."""
    import io

    from PIL import Image, ImageDraw

    files = []
    for n in range(count):
        image = Image.new("RGB", (360, 120), (255, 255 - 9 * n, 200))
        ImageDraw.Draw(image).text((16, 40), f"OFFER {n:02d} NOW", fill="black", font_size=32)
        out = io.BytesIO()
        image.save(out, "PNG")
        files.append((f"up-{n:02d}.png", out.getvalue()))
    return files


def comparable(lib: Library) -> dict[str, tuple]:
    """Each point's vectors and payload, less what a later ingest of the same bytes stamps anew (when
    and where the uploaded file was ingested)."""
    changing = ("paths", "ingested_at", "file_date")
    return {p.id: (p.vectors, {k: v for k, v in p.payload.items() if k not in changing})
            for p in lib.store.points()}  # fmt: skip


def test_a_backup_during_an_upload_job_and_a_delete_restores_and_finishes_the_job(
    tmp_path, settings, encoders, ingested
):
    db = copy_of_sample(ingested, tmp_path / "db")
    own = ServeSettings.serving(settings).with_overrides(db=db, batch_size=2)
    with Library(own, encoders=encoders) as lib, served_client(create_app(lib), timeout=120) as http:
        gone = next(pid for pid, _ in lib.store.scroll())
        job = lib.jobs.submit(distinct_pngs(20))
        assert http.delete(f"/api/images/{gone}").status_code == 200  # while the job runs
        manifest = http.post("/api/admin/backup", json={"name": "mid-job"}).json()
        lib.jobs.wait(job.id, timeout=300)
        source = comparable(lib)
    backed_up = json.loads((db / "backups" / "mid-job" / "jobs" / f"{job.id}.json").read_text())
    assert backed_up["status"] != "done"  # the backup caught the job running
    assert manifest["counts"]["points"] < len(source) + 1  # not every upload was in yet

    target = ServeSettings.serving(settings).with_overrides(db=tmp_path / "restored")
    restore_backup(str(db / "backups" / "mid-job"), target)
    with Library(target, encoders=encoders) as copy:
        copy.jobs.start()  # as `adsearch serve` does: the job resumes
        try:
            assert copy.jobs.wait(job.id, timeout=300).status == "done"
        finally:
            copy.jobs.stop()
        restored = comparable(copy)
        assert gone not in restored
    assert restored.keys() == source.keys()
    assert restored == source  # same vectors and payloads (OCR, boards, metadata) for every point


def test_a_backup_killed_half_way_leaves_the_last_one_valid_and_is_never_taken_for_one(library, tmp_path):
    points = library.store.count()
    library.close()
    first = tmp_path / "first"
    with Library(library.settings) as lib:
        backup_library(lib, str(first))
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        import engine.admin.backup as backup
        from engine.library import Library
        from engine.settings import Settings

        def killed(*args):  # the points and the metadata are written; the process dies before the rest
            os.kill(os.getpid(), signal.SIGKILL)

        backup._copy_watches = killed
        if __name__ == "__main__":
            with Library(Settings(db=Path({str(library.settings.db)!r}))) as lib:
                backup.backup_library(lib, {str(tmp_path / "second")!r})
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert (tmp_path / "second" / "points.parquet").is_file()  # it got that far
    with pytest.raises(BackupError, match="no manifest.json"):
        check_backup(str(tmp_path / "second"))
    assert check_backup(str(first))["counts"]["points"] == points
