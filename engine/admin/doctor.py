"""`adsearch doctor`: what this installation will do, and why, on one screen.

Each check gives a status (ok, off, fail) and one line. `fail` means something the configuration
asks for does not work here (exit status 1); `off` means a part that is optional in this
configuration is not available (the image channel without CLIP weights, unless --require-visual).
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.settings import Settings

PIPELINE_SAMPLE = 10_000  # points read to summarise which pipeline made them
FILES_SHOWN = 5  # images named in the line about vanished or changed originals


@dataclass
class Finding:
    status: str  # ok | off | fail
    topic: str
    text: str


@dataclass
class Diagnosis:
    findings: list[Finding] = field(default_factory=list)

    def add(self, status: str, topic: str, text: str) -> None:
        self.findings.append(Finding(status, topic, text))

    @property
    def ok(self) -> bool:
        return not any(f.status == "fail" for f in self.findings)

    def lines(self) -> list[str]:
        return [f"{f.status:<4}  {f.topic:<10} {f.text}" for f in self.findings]


def diagnose(settings: Settings) -> Diagnosis:
    """Run every check against `settings` (no network: the model hub is not asked)."""
    report = Diagnosis()
    _check_ocr(settings, report)
    encoders = _check_models(settings, report)
    _check_store(settings, encoders, report)
    return report


def _check_ocr(settings: Settings, report: Diagnosis) -> None:
    from ocr_text import TesseractMissingError, tesseract_version
    from ocr_text.readers import usable_readers

    try:
        import pytesseract

        languages = ", ".join(sorted(pytesseract.get_languages(config="")))
        report.add("ok", "tesseract", f"version {tesseract_version()}, languages: {languages}")
    except (TesseractMissingError, OSError, RuntimeError) as exc:
        needed = "tesseract" in settings.ocr_readers
        report.add("fail" if needed else "off", "tesseract", f"not usable: {exc}")
    try:
        usable, missing = usable_readers(settings.ocr_settings())
    except TesseractMissingError as exc:
        report.add("fail", "ocr", f"no OCR reader can run: {exc}")
        return
    for name in settings.ocr_readers:
        if name in missing:
            report.add("fail", "ocr", f"reader {name} asked for but unavailable: {missing[name]}")
    report.add("ok", "ocr", f"readers used: {', '.join(usable.readers)}")


def _check_models(settings: Settings, report: Diagnosis):
    from engine.models.encoders import load_encoders

    try:
        encoders = load_encoders(settings.with_overrides(require_visual=False), quiet=True)  # judged below
    except Exception as exc:  # noqa: BLE001 (any failure to load is the finding)
        report.add("fail", "models", f"{type(exc).__name__}: {exc}")
        return None
    cache = settings.onnx_cache()
    runtime = f"ONNX Runtime, exported towers cached in {cache}" if cache else "PyTorch"
    if encoders.clip is not None:
        where = "local folder" if Path(settings.clip_model).is_dir() else "Hugging Face cache"
        family = {"clip": "CLIP", "siglip": "SigLIP"}.get(encoders.clip.family, encoders.clip.family)
        report.add("ok", "clip", f"{settings.clip_model} ({where}, {family}), {encoders.precision['image']}, "
                   f"{encoders.clip.dim}-d, {runtime}")  # fmt: skip
    else:
        status = "fail" if settings.require_visual else "off"
        hint = "on a connected machine, `adsearch models download --to DIR`; here, --clip-model DIR/clip"
        report.add(status, "clip", f"image channel off: {encoders.clip_error}; {hint}")
    report.add("ok", "text", f"{settings.text_model}, {encoders.precision['text']}, {encoders.dense.dim}-d")
    report.add(
        "ok", "keywords", f"{settings.sparse_model} BM25 with character {settings.keyword_ngram}-grams"
    )
    for tower, figures in encoders.quantisation().items():
        report.add("ok", "int8", quantisation_line(tower, figures))
    return encoders


def quantisation_line(tower: str, figures: dict) -> str:
    """One tower's int8 check, e.g. "clip-image: int8 kept (cosine 0.99910 >= 0.99500, agreement 0.962
    >= 0.900 on 24 probes)", or why it runs in fp32, or that the PyTorch path is not checked."""
    from engine.models.onnx_towers import compared as figures_compared

    if figures.get("checked") is False:
        return f"{tower}: int8 unchecked (PyTorch path)"
    cosine, agreement = figures["cosine"], figures["agreement"]
    min_cosine, min_agreement = figures["min_cosine"], figures["min_agreement"]
    compared = (
        f"{figures_compared('cosine', cosine, min_cosine)}, "
        f"{figures_compared('agreement', agreement, min_agreement)} on {figures['probes']} probes"
    )
    if figures["precision"] == "int8":
        return f"{tower}: int8 kept ({compared})"
    return f"{tower}: fp32, int8 ranks unlike fp32 ({compared})"


def _check_store(settings: Settings, encoders, report: Diagnosis) -> None:
    from engine.errors import StoreError
    from engine.store import open_store

    where = settings.qdrant_url or str(Path(settings.db).resolve())
    try:
        store = open_store(settings)
    except StoreError as exc:
        report.add("fail", "store", str(exc))
        return
    with store:
        if store.dims() is None:
            report.add(
                "ok",
                "store",
                f"{where}: collection '{settings.collection}' not created yet (ingest makes it)",
            )
            return
        report.add("ok", "store", f"{where}: collection '{settings.collection}', {store.count()} images")
        _check_pipelines(store, settings, encoders, report)
        _check_files(store, settings, report)


def _check_pipelines(store, settings: Settings, encoders, report: Diagnosis) -> None:
    """Which pipeline made the stored points, and whether a rerun of ingest would redo any."""
    from engine.ingest.ocr import usable_ocr
    from engine.ingest.pipeline import pipeline_info

    signatures: Counter = Counter()
    for n, (_, payload) in enumerate(store.scroll(batch=1024, fields=["pipeline"])):
        if n >= PIPELINE_SAMPLE:
            break
        signatures[(payload.get("pipeline") or {}).get("signature", "?")] += 1
    current = pipeline_info(usable_ocr(settings.ocr_settings()), encoders)["signature"] if encoders else None
    parts = [f"{sig} x{n}" + (" (current)" if sig == current else "") for sig, n in signatures.most_common()]
    stale = sum(n for sig, n in signatures.items() if sig != current)
    status = "ok" if not stale else "off"
    hint = f"; {stale} made by an older pipeline: `adsearch ingest` again updates them" if stale else ""
    report.add(status, "pipeline", ", ".join(parts) + hint)


def original_problem(payload: dict, image_id: str, db: Path) -> str | None:
    """Why none of an image's paths can serve its original (the first path's reason), or None. A
    quick check (kind and size of each file; the server also checks the sha256 before serving)."""
    from engine.media.originals import stored_files
    from engine.media.sources import display

    reasons = []
    for path in payload.get("paths") or []:
        reason = _file_problem(stored_files(path, image_id, db), payload.get("bytes"))
        if reason is None:
            return None
        reasons.append(f"{display(path)}: {reason}")
    return reasons[0] if reasons else "no path stored"


def _file_problem(names: list[str], size: int | None) -> str | None:
    for name in names:
        try:
            info = os.lstat(name)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode):
            return "no longer a regular file (a link, FIFO or device now)"
        return (
            None
            if info.st_size == size
            else f"changed since it was ingested ({info.st_size} bytes, was {size})"
        )
    return "no longer there"


def _check_files(store, settings: Settings, report: Diagnosis) -> None:
    """Images whose original file vanished or changed: the web UI cannot show them (404)."""
    db = Path(settings.db).resolve()
    problems, checked = [], 0
    for image_id, payload in store.scroll(batch=1024, fields=["paths", "bytes"]):
        checked += 1
        reason = original_problem(payload, image_id, db)
        if reason:
            problems.append(f"{image_id} {reason}")
    if not problems:
        report.add("ok", "files", f"the original file of each of the {checked} images is in place")
        return
    shown = "; ".join(problems[:FILES_SHOWN]) + (
        f"; ... {len(problems) - FILES_SHOWN} more" if len(problems) > FILES_SHOWN else ""
    )
    report.add("off", "files", f"{len(problems)} of {checked} images' original files vanished or changed "
               f"(not served; ingest again or delete them): {shown}")  # fmt: skip
