"""Text towers (CLIP's text encoder, MiniLM) on ONNX Runtime: the fast path for text encoding on CPU.

Each tower is exported once from its transformers model (eager attention, dynamic batch and length),
int8-quantised per channel by onnxruntime when asked, and cached under the model cache; later loads
take well under a second. Query encoding of a short text reads every weight once, so it is bound by
memory bandwidth and per-operator overhead: ONNX Runtime's fused graph and int8 weights cut the CLIP
text tower from ~45 ms (PyTorch fp32) to ~10 ms here (bench/results/perf.md).
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

EXPORT_RECIPE = "2"  # bump when the export changes: cached files from older recipes are not reused
INPUTS = ("input_ids", "attention_mask")


class OnnxTower:
    """One exported text tower: (input_ids, attention_mask) -> features, one thread per call.

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

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
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
    (forward(input_ids, attention_mask) -> features) only when an export is needed."""
    import onnxruntime

    key = f"{EXPORT_RECIPE}|{fingerprint}|int8={int8}|torch={torch.__version__}|ort={onnxruntime.__version__}"
    folder = Path(cache) / "onnx" / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    path = folder / "model.onnx"
    if not path.exists():
        log.warning("preparing the %s encoder for ONNX Runtime (once, cached in %s)", name, folder)
        export(make_module(), sample, path, int8)
    return OnnxTower(path)


def export(module: torch.nn.Module, sample: dict[str, torch.Tensor], path: Path, int8: bool) -> None:
    """Export `module` to `path` (atomically: a crash leaves no half-written model behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=path.parent, prefix=".export-"))
    try:
        fp32 = work / "fp32.onnx"
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(),
                tuple(sample[name] for name in INPUTS),
                str(fp32),
                input_names=list(INPUTS),
                output_names=["features"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in INPUTS},
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
