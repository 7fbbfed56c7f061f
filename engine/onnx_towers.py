"""Model towers (CLIP's image and text encoders, MiniLM) on ONNX Runtime: the fast path on CPU.

Each tower is exported once from its transformers model (eager attention, dynamic batch and length),
int8-quantised per channel by onnxruntime when asked, and cached under the model cache; later loads
take well under a second. Query encoding of a short text reads every weight once, so it is bound by
memory bandwidth and per-operator overhead: ONNX Runtime's fused graph and int8 weights cut the CLIP
text tower from ~45 ms (PyTorch fp32) to ~10 ms here, and the CLIP image tower at ingest from 155 to
~43 ms per image on one core (bench/results/perf.md, docs/decisions.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

EXPORT_RECIPE = "3"  # bump when the export changes: cached files from older recipes are not reused


class OnnxTower:
    """One exported tower: named inputs (token ids and mask, or pixels) -> features, one thread per call.

    One intra-op thread: concurrent queries and the OCR workers already keep the cores busy, and for
    a single short query two threads measured slower here than one.
    """

    def __init__(self, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        feeds = {k: v.astype(np.int64 if v.dtype.kind in "iu" else np.float32) for k, v in inputs.items()}
        return self.session.run(None, feeds)[0]


def model_fingerprint(model_id: str) -> str:
    """What identifies a model's weights: its id, plus for a local folder each file's size and mtime."""
    folder = Path(model_id)
    if not folder.is_dir():
        return model_id
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return model_id + "|" + "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def cached_tower(
    name: str,
    fingerprint: str,
    make_module: Callable[[], torch.nn.Module],
    sample: dict[str, torch.Tensor],
    cache: Path,
    int8: bool,
) -> OnnxTower:
    """The tower from the cache, exported first if missing. `make_module` builds the torch module
    (forward(**sample) -> features) only when an export is needed."""
    import onnxruntime

    key = f"{EXPORT_RECIPE}|{fingerprint}|int8={int8}|torch={torch.__version__}|ort={onnxruntime.__version__}"
    folder = Path(cache) / "onnx" / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    path = folder / "model.onnx"
    if not path.exists():
        log.warning("preparing the %s encoder for ONNX Runtime (once, cached in %s)", name, folder)
        export(make_module(), sample, path, int8)
    return OnnxTower(path)


def export(module: torch.nn.Module, sample: dict[str, torch.Tensor], path: Path, int8: bool) -> None:
    """Export `module` to `path` (atomically: a crash leaves no half-written model behind). Every
    input's first axis is the batch; the second axis of token inputs is their length."""
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
        final = fp32
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            final = work / "int8.onnx"
            logging.disable(logging.WARNING)  # it advises a pre-processing step on the root logger
            try:
                quantize_dynamic(str(fp32), str(final), weight_type=QuantType.QInt8, per_channel=True)
            finally:
                logging.disable(logging.NOTSET)
        os.replace(final, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
