"""`adsearch board export NAME --zip FILE` (issue 23): the board's originals, byte for byte as
ingested, and a manifest.csv; an original that is gone is left out and the manifest says why."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import zipfile

from helpers import adsearch

from engine.library import Library


def test_a_board_exports_its_originals_and_a_manifest(
    tmp_path, settings, encoders, sample_dir, truth, tiny_clip_dir
):
    folder = tmp_path / "ads"
    folder.mkdir()
    for ad in truth[:5]:
        shutil.copy(sample_dir / ad["file"], folder)
    db = tmp_path / "db"
    with Library(settings.with_overrides(db=db), encoders=encoders) as library:
        library.ingest([folder])
        ids = [pid for pid, _ in library.store.scroll(fields=["sha256"])]
        library.boards.create("Keep", "")
        library.boards.add("Keep", ids[:3])
        payloads = library.store.retrieve(ids[:3])
    os.remove(payloads[ids[2]]["paths"][0])  # the third original is deleted before the export

    out = tmp_path / "keep.zip"
    env = {"ADSEARCH_CLIP_MODEL": str(tiny_clip_dir)}
    done = adsearch("board", "export", "keep", "--zip", str(out), "--db", str(db), env_extra=env)
    assert done.returncode == 0, done.stderr
    assert "2 images and manifest.csv (1 originals could not be read" in done.stdout
    with zipfile.ZipFile(out) as archive:
        manifest = list(csv.DictReader(io.TextIOWrapper(archive.open("manifest.csv"), encoding="utf-8")))
        assert [row["id"] for row in manifest] == ids[:3]  # in the order they were put on the board
        for row in manifest:
            if row["id"] == ids[2]:
                assert row["file"] == "" and row["missing"]  # left out, with the reason
                continue
            data = archive.read(row["file"])
            assert hashlib.sha256(data).hexdigest() == payloads[row["id"]]["sha256"]  # the ingested bytes
        assert len([n for n in archive.namelist() if n.startswith("images/")]) == 2

    bad = adsearch("board", "export", "nothere", "--zip", str(out), "--db", str(db), env_extra=env)
    assert bad.returncode == 2 and "no board named" in bad.stderr
