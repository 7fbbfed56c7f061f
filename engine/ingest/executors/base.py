"""The executor interface and what both executors share: reading a source file, encoding images."""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.ingest.pipeline import ModelFacts
from engine.media.images import AnalysedImage
from engine.media.sources import SourcePolicy, read_bytes
from engine.models.creative import creative_vector
from engine.schema import CREATIVE_CHANNEL, IMAGE_CHANNEL, SPARSE_CHANNEL, TEXT_CHANNEL
from ocr_text import OcrResult


@dataclass
class Pending:
    """A file ingest has to (re)process, and what the triage learnt about it."""

    path: str | Path  # a local path or a URL (engine.media.sources)
    sha256: str
    size: int
    known_ocr: OcrResult | None = None  # stored OCR still valid: only the encoders changed
    folder: str = "."
    file_date: str = ""
    keep: dict = field(default_factory=dict)  # payload keys of the stored point that ingest does not write
    data: bytes | None = None  # a remote URL's bytes as hashed: read once, kept with the point


@dataclass
class Processed:
    """One image analysed and encoded: what a point is made of, and the pipeline that made it."""

    analysed: AnalysedImage  # its `view` is dropped once encoded
    vectors: dict
    encode_seconds: float
    signature: str


Outcome = Processed | str  # a str is the one-line reason the file failed


class Executor(ABC):
    """Turns pending files into outcomes, in any order, each file exactly once."""

    @abstractmethod
    def facts(self) -> ModelFacts:
        """The models this executor encodes with (on a cluster, as a worker loaded them)."""

    @abstractmethod
    def process(self, todo: Iterator[Pending]) -> Iterator[tuple[Pending, Outcome]]:
        """Outcomes as they finish; `todo` is drawn lazily (it is triaged as it is read)."""

    def close(self) -> None:  # noqa: B027 (optional)
        """Release workers and connections."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_checked(location: str | Path, sha256: str, policy: SourcePolicy) -> bytes:
    """A file's bytes read again for processing, refused (OSError) unless they are the bytes the
    triage hashed: what is stored is always what was hashed, even if the file changed meanwhile."""
    data = read_bytes(location, policy)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise OSError("the file changed while it was being ingested; run ingest again")
    return data


def encode_images(encoders, analysed: list[AnalysedImage]) -> tuple[list[dict], float]:
    """Every channel's vector of each image (text channels only where OCR found text), and the
    seconds it took."""
    start = time.perf_counter()
    with_text = [i for i, a in enumerate(analysed) if a.ocr.text]
    texts = [analysed[i].ocr.text for i in with_text]
    image_vectors = encoders.clip.encode_images([a.view for a in analysed]) if encoders.clip else None
    dense = encoders.dense.encode(texts) if texts else []
    sparse = encoders.sparse.encode_documents(texts) if texts else []
    out: list[dict] = [{CREATIVE_CHANNEL: creative_vector(a.view, viewed=True)} for a in analysed]
    if image_vectors is not None:
        for vectors, image_vector in zip(out, image_vectors, strict=True):
            vectors[IMAGE_CHANNEL] = image_vector.tolist()
    for j, i in enumerate(with_text):
        out[i][TEXT_CHANNEL], out[i][SPARSE_CHANNEL] = dense[j].tolist(), sparse[j]
    return out, time.perf_counter() - start
