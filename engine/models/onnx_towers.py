"""Model towers (the image-text model's image and text encoders, MiniLM) on ONNX Runtime: the fast
path on CPU.

Each tower is exported once from its transformers model (eager attention, dynamic batch and length)
and cached under the model cache; later loads take well under a second. Query encoding of a short
text reads every weight once, so it is bound by memory bandwidth and per-operator overhead: ONNX
Runtime's fused graph and int8 weights cut the CLIP text tower from ~45 ms (PyTorch fp32) to ~10 ms
here, and the CLIP image tower at ingest from 155 to ~43 ms per image on one core
(bench/results/perf.md, docs/decisions.md).

int8 is checked, not hoped for: when a tower is first quantised (per channel, onnxruntime), its
vectors for a fixed probe set (engine/models/probes.py) are compared with the fp32 export's: the mean cosine
of each probe's two vectors, and the mean share of each probe's 10 nearest other probes that int8
keeps. The figures go to `check.json` beside `fp32.onnx` and `int8.onnx`; every load compares them
with the current thresholds, and a tower below either runs in fp32 (one log line says so). Changing a
threshold therefore needs no new export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

EXPORT_RECIPE = "4"  # bump when the export changes: cached files from older recipes are not reused
CHECK_VERSION = 1  # bump when the check's figures change meaning: cached checks are then made again
NEIGHBOURS = 10  # top-k of the neighbour agreement


class OnnxTower:
    """One exported tower: named inputs (token ids and mask, or pixels) -> features, one thread per call.

    One intra-op thread: concurrent queries and the OCR workers already keep the cores busy, and for
    a single short query two threads measured slower here than one. `precision` is what runs ("int8"
    or "fp32"); `check` the int8 check's figures and decision (None when no check applies).
    """

    def __init__(self, path: Path, precision: str = "fp32", check: dict | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.precision = precision
        self.check = check
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        feeds = {k: v.astype(np.int64 if v.dtype.kind in "iu" else np.float32) for k, v in inputs.items()}
        return self.session.run(None, feeds)[0]


@dataclass(frozen=True)
class Probe:
    """A tower's fixed probe set: `key` names it (a new key makes the check run again); `encode(tower)`
    gives one vector per probe, each probe fed alone as at query and ingest time."""

    key: str
    encode: Callable[[Callable[..., np.ndarray]], np.ndarray]


def model_fingerprint(model_id: str) -> str:
    """What identifies a model's weights: its id, plus for a local folder each file's size and mtime."""
    folder = Path(model_id)
    if not folder.is_dir():
        return model_id
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return model_id + "|" + "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def tower_folder(name: str, fingerprint: str, cache: Path) -> Path:
    """Where a tower's exports and check live: one folder per model, recipe and library versions."""
    import onnxruntime

    key = f"{EXPORT_RECIPE}|{fingerprint}|torch={torch.__version__}|ort={onnxruntime.__version__}"
    return Path(cache) / "onnx" / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def cached_tower(
    name: str,
    fingerprint: str,
    make_module: Callable[[], torch.nn.Module],
    sample: dict[str, torch.Tensor],
    cache: Path,
    int8: bool,
    probe: Probe | None = None,
    min_cosine: float = 0.0,
    min_agreement: float = 0.0,
) -> OnnxTower:
    """The tower from the cache, exported first if missing. `make_module` builds the torch module
    (forward(**sample) -> features) only when an export is needed.

    With `int8`, the int8 tower is made from the fp32 export and, given a `probe`, checked against it
    once (check.json); it is used when its figures reach `min_cosine` and `min_agreement`, else the
    fp32 tower is. Without a probe the int8 tower is used unchecked."""
    folder = tower_folder(name, fingerprint, cache)
    fp32, int8_path = folder / "fp32.onnx", folder / "int8.onnx"
    said = False
    if not fp32.exists():
        log.warning("preparing the %s encoder for ONNX Runtime (once, cached in %s)", name, folder)
        export(make_module(), sample, fp32)
        said = True
    if not int8:
        return OnnxTower(fp32, "fp32")
    if not int8_path.exists():
        if not said:
            log.warning("preparing the int8 %s encoder for ONNX Runtime (once, cached in %s)", name, folder)
        quantise(fp32, int8_path)
    if probe is None:
        return OnnxTower(int8_path, "int8")
    figures, towers = read_check(folder, probe), {}
    if figures is None:
        towers = {"fp32": OnnxTower(fp32, "fp32"), "int8": OnnxTower(int8_path, "int8")}
        figures = run_check(name, towers["fp32"], towers["int8"], probe)
        figures["thresholds"] = {"min_cosine": min_cosine, "min_agreement": min_agreement}
        figures["decision"] = decide(figures, min_cosine, min_agreement)
        write_json(folder / "check.json", figures)
    precision = decide(figures, min_cosine, min_agreement)
    check = {
        "tower": name,
        "probes": figures["probes"],
        "cosine": figures["cosine"],
        "cosine_min": figures["cosine_min"],
        "agreement": figures["agreement"],
        "neighbours": figures["neighbours"],
        "min_cosine": min_cosine,
        "min_agreement": min_agreement,
        "precision": precision,
        "check_seconds": figures.get("seconds"),
    }
    if precision == "fp32":
        level = logging.INFO if not towers else logging.WARNING  # said loudly once, when first found
        log.log(level, "%s: int8 ranks unlike fp32 on the probe set (%s): using fp32", name, shortfall(check))
    tower = towers.get(precision)
    if tower is None:
        tower = OnnxTower(int8_path if precision == "int8" else fp32, precision)
    tower.check = check
    return tower


def decide(figures: dict, min_cosine: float, min_agreement: float) -> str:
    """int8 when both figures reach their thresholds, else fp32."""
    return "int8" if figures["cosine"] >= min_cosine and figures["agreement"] >= min_agreement else "fp32"


FIGURE_DECIMALS = {"cosine": 5, "agreement": 3}  # the fewest decimals a figure is shown with


def shortfall(check: dict) -> str:
    """Which figure missed its threshold, e.g. "cosine 0.99968 < 0.99990"."""
    parts = [
        compared(what, check[what], check[limit])
        for what, limit in (("cosine", "min_cosine"), ("agreement", "min_agreement"))
        if check[what] < check[limit]
    ]
    return ", ".join(parts) or "figures reach the thresholds"


def compared(what: str, value: float, limit: float) -> str:
    """A figure against its threshold, e.g. "cosine 0.99968 < 0.99990" or "agreement 0.962 >= 0.900":
    both numbers with the same decimals, at least FIGURE_DECIMALS[what] and as many more as it takes
    for numbers that differ to print differently (an int8 tower close to fp32 shows how close)."""
    sign = ">=" if value >= limit else "<"
    for decimals in range(FIGURE_DECIMALS.get(what, 3), 17):
        shown = f"{value:.{decimals}f}", f"{limit:.{decimals}f}"
        if shown[0] != shown[1] or value == limit:
            break
    else:
        shown = repr(value), repr(limit)  # differ below 1e-16: the shortest exact forms
    return f"{what} {shown[0]} {sign} {shown[1]}"


def read_check(folder: Path, probe: Probe) -> dict | None:
    """The stored check of this tower for this probe set, or None (missing, unreadable, outdated)."""
    try:
        figures = json.loads((folder / "check.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(figures, dict) or figures.get("version") != CHECK_VERSION:
        return None
    if figures.get("probe") != probe.key:
        return None
    return figures


def run_check(name: str, fp32: OnnxTower, int8: OnnxTower, probe: Probe) -> dict:
    """Encode the probe set with both towers and compare (see `compare`)."""
    start = time.perf_counter()
    figures = compare(probe.encode(fp32), probe.encode(int8))
    return {"version": CHECK_VERSION, "tower": name, "probe": probe.key, **figures,
            "seconds": round(time.perf_counter() - start, 3)}  # fmt: skip


def compare(fp32: np.ndarray, int8: np.ndarray, neighbours: int = NEIGHBOURS) -> dict:
    """Figures of int8 vectors against the fp32 vectors of the same probes (rows): mean and lowest
    cosine of each probe's two vectors; neighbour agreement, the mean over probes of the share of its
    `neighbours` nearest other probes (by cosine) under fp32 that are also its nearest under int8."""
    a, b = _unit(fp32), _unit(int8)
    cosines = np.clip((a * b).sum(axis=1), -1.0, 1.0)
    k = min(neighbours, len(a) - 1)
    if k < 1:
        raise ValueError("the probe set needs at least two probes")
    near_a, near_b = _nearest(a, k), _nearest(b, k)
    agreement = [len(set(x) & set(y)) / k for x, y in zip(near_a.tolist(), near_b.tolist(), strict=True)]
    return {
        "probes": len(a),
        "cosine": float(cosines.mean()),
        "cosine_min": float(cosines.min()),
        "agreement": float(np.mean(agreement)),
        "neighbours": k,
    }


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    return v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)


def _nearest(unit: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k nearest other rows (cosine), ties broken by index."""
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def write_json(path: Path, data: dict) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".check-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def export(module: torch.nn.Module, sample: dict[str, torch.Tensor], path: Path) -> None:
    """Export `module` in fp32 to `path` (atomically: a crash leaves no half-written model behind).
    Every input's first axis is the batch; the second axis of token inputs is their length."""
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=path.parent, prefix=".export-"))
    try:
        fp32 = work / "fp32.onnx"
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(),
                tuple(sample.values()),
                str(fp32),
                input_names=list(sample),
                output_names=["features"],
                dynamic_axes={
                    name: {0: "batch", 1: "tokens"} if value.dim() == 2 else {0: "batch"}
                    for name, value in sample.items()
                },
                opset_version=17,
                dynamo=False,
            )
        os.replace(fp32, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def quantise(fp32: Path, path: Path) -> None:
    """int8 weights per output channel (activations quantised per call), written atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    work = Path(tempfile.mkdtemp(dir=path.parent, prefix=".export-"))
    try:
        int8 = work / "int8.onnx"
        logging.disable(logging.WARNING)  # it advises a pre-processing step on the root logger
        try:
            quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.disable(logging.NOTSET)
        os.replace(int8, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
