"""`adsearch models download / check`: weights for a machine without network, verified offline.

No network here: "downloads" come from the session's tiny random CLIP folder (save_pretrained), which
`download` copies as it would copy any local model folder. The hub path is exercised with
huggingface_hub.snapshot_download replaced by a fake that copies that folder (the one stand-in).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from fnmatch import fnmatch
from pathlib import Path

import pytest

from engine.cli import main
from engine.models import download as models


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def projection_dim(folder: Path) -> int:
    return json.loads((folder / "config.json").read_text())["projection_dim"]


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory, tiny_clip_dir) -> Path:
    out = tmp_path_factory.mktemp("offline-models")
    manifest = models.download(str(tiny_clip_dir), out)
    assert manifest == out / "manifest.json"
    return out


def fresh_copy(downloaded: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(downloaded, target)
    return target


def test_manifest_lists_every_file_with_its_sha256(downloaded, tiny_clip_dir):
    manifest = json.loads((downloaded / "manifest.json").read_text())
    clip = manifest["models"]["clip"]
    assert clip["source"] == str(tiny_clip_dir.resolve()) and clip["revision"] is None
    assert clip["folder"] == "clip"
    assert "config.json" in clip["files"] and "model.safetensors" in clip["files"]
    for name, digest in clip["files"].items():
        assert digest == sha256(downloaded / "clip" / name) == sha256(tiny_clip_dir / name)
    assert manifest["models"]["text"]["bundled"] is True
    assert manifest["models"]["keywords"]["bundled"] is True
    assert manifest["created_at"] and manifest["adsearch"]


def test_check_passes_and_reports_the_vector_size(downloaded, tiny_clip_dir):
    report = models.check(downloaded)
    assert report.ok, report.lines
    assert report.dim == projection_dim(tiny_clip_dir) == 16
    assert any("image vector size 16" in line for line in report.lines)
    assert any("text vector size 16" in line for line in report.lines)


def test_a_changed_file_fails_the_check_by_name(downloaded, tmp_path):
    folder = fresh_copy(downloaded, tmp_path)
    with (folder / "clip" / "model.safetensors").open("ab") as f:
        f.write(b"\0")
    report = models.check(folder)
    assert not report.ok
    assert any("FAIL" in line and "clip/model.safetensors: changed" in line for line in report.lines)


def test_a_missing_file_fails_the_check_by_name(downloaded, tmp_path):
    folder = fresh_copy(downloaded, tmp_path)
    (folder / "clip" / "config.json").unlink()
    report = models.check(folder)
    assert not report.ok
    assert any("FAIL" in line and "clip/config.json: missing" in line for line in report.lines)


def test_no_manifest_fails_the_check(tmp_path):
    report = models.check(tmp_path)
    assert not report.ok and "manifest.json" in report.lines[0]


def test_cli_download_and_check_exit_codes(tiny_clip_dir, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["models", "download", "--clip", str(tiny_clip_dir), "--to", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out / "manifest.json") in printed and "model.safetensors" in printed

    assert main(["models", "check", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"--clip-model {out / 'clip'}" in printed and "FAIL" not in printed

    with (out / "clip" / "config.json").open("ab") as f:
        f.write(b" ")
    assert main(["models", "check", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "clip/config.json: changed" in printed

    assert main(["models", "check", str(tmp_path / "nowhere")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["models", "download"])  # --to is required
    assert exc.value.code == 2


def test_the_downloaded_folder_loads_with_clip_model_offline(downloaded, tiny_clip_dir, monkeypatch):
    from engine.cli import build_parser, settings_of
    from engine.models.encoders import ImageTextEncoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clip_dir = downloaded / "clip"
    args = build_parser().parse_args(["search", "burger", "--clip-model", str(clip_dir)])
    settings = settings_of(args)
    assert settings.clip_model == str(clip_dir)
    encoder = ImageTextEncoder(settings.clip_model, "fp32", None)
    assert encoder.dim == projection_dim(tiny_clip_dir)
    assert encoder.encode_texts(["burger"]).shape == (1, encoder.dim)


def fake_snapshot_download(source: Path, calls: list, with_safetensors: bool = True):
    """Stand-in for huggingface_hub.snapshot_download (tests have no network): copies the files of
    `source` that match allow_patterns into local_dir, and writes the commit metadata the real
    function keeps beside a local_dir download."""

    def fake(repo_id, *, revision=None, local_dir=None, allow_patterns=None, **kwargs):
        calls.append({"repo_id": repo_id, "revision": revision, "allow_patterns": list(allow_patterns)})
        local_dir = Path(local_dir)
        for path in source.iterdir():
            if not with_safetensors and path.suffix == ".safetensors":
                continue
            if any(fnmatch(path.name, p) for p in allow_patterns):
                shutil.copy(path, local_dir / path.name)
        if not with_safetensors and "pytorch_model.bin" in allow_patterns:
            (local_dir / "pytorch_model.bin").write_bytes(b"weights")
        meta = local_dir / ".cache" / "huggingface" / "download"
        meta.mkdir(parents=True, exist_ok=True)
        (meta / "config.json.metadata").write_text("a" * 40 + "\netag\n1.0\n")
        return str(local_dir)

    return fake


def test_hub_download_uses_snapshot_download_with_allow_patterns(tiny_clip_dir, tmp_path, monkeypatch):
    import huggingface_hub

    calls: list = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download(tiny_clip_dir, calls))
    path = models.download("someone/tiny-clip", tmp_path, revision="main")
    assert len(calls) == 1  # safetensors were there: no pickled weights asked for
    call = calls[0]
    assert call["repo_id"] == "someone/tiny-clip" and call["revision"] == "main"
    assert "config.json" in call["allow_patterns"] and "model.safetensors" in call["allow_patterns"]
    assert not any(p.endswith(".bin") for p in call["allow_patterns"])
    manifest = json.loads(path.read_text())["models"]["clip"]
    assert manifest["source"] == "someone/tiny-clip" and manifest["revision"] == "a" * 40
    assert ".cache" not in "".join(manifest["files"])
    assert manifest["files"]["model.safetensors"] == sha256(tiny_clip_dir / "model.safetensors")
    assert models.check(tmp_path).ok


def test_hub_download_falls_back_to_pytorch_bin(tiny_clip_dir, tmp_path, monkeypatch):
    import huggingface_hub

    calls: list = []
    fake = fake_snapshot_download(tiny_clip_dir, calls, with_safetensors=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    path = models.download("someone/old-clip", tmp_path)
    assert len(calls) == 2 and "pytorch_model.bin" in calls[1]["allow_patterns"]
    files = json.loads(path.read_text())["models"]["clip"]["files"]
    assert "pytorch_model.bin" in files and not any(f.endswith(".safetensors") for f in files)


def test_hub_failure_is_one_line_error(tmp_path, monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("cannot reach huggingface.co\nlong traceback text")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(models.ModelDownloadError, match="cannot reach huggingface.co$"):
        models.download("someone/tiny-clip", tmp_path)
