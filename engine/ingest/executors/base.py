"""The executor interface and what both executors share: reading a source file, encoding images."""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.channels import all_channels
from engine.ingest.pipeline import ModelFacts
from engine.media.images import AnalysedImage
from engine.media.sources import SourcePolicy, read_bytes
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


def unreadable(exc: OSError) -> str:
    """The one-line reason a file could not be read."""
    return f"cannot read file ({exc.strerror or exc})"


def read_source(
    location: str | Path, sha256: str, policy: SourcePolicy, kept: bytes | None = None
) -> bytes | str:
    """The bytes to process: `kept` (a remote file's, read once by the triage), else the file read
    again and refused unless it holds the bytes the triage hashed (what is stored is always what was
    hashed, even if the file changed meanwhile); a str is the reason it cannot be read."""
    if kept:
        return kept
    try:
        data = read_bytes(location, policy)
    except OSError as exc:
        return unreadable(exc)
    if hashlib.sha256(data).hexdigest() != sha256:
        return unreadable(OSError("the file changed while it was being ingested; run ingest again"))
    return data


def encode_processed(encoders, analysed: list[AnalysedImage], signature: str) -> list[Processed]:
    """Analysed images encoded as one batch, each a Processed (its view dropped, the batch's
    encoding time shared evenly) made by the pipeline `signature`."""
    vectors, seconds = encode_images(encoders, analysed)
    for image in analysed:
        image.view = None
    share = seconds / len(analysed)
    return [Processed(a, v, share, signature) for a, v in zip(analysed, vectors, strict=True)]


def encode_images(encoders, analysed: list[AnalysedImage]) -> tuple[list[dict], float]:
    """Every channel's vector of each image (text channels only where OCR found text), and the
    seconds it took."""
    start = time.perf_counter()
    images, texts = [a.view for a in analysed], [a.ocr.text or "" for a in analysed]
    out: list[dict] = [{} for _ in analysed]
    for channel in all_channels():  # each registered channel encodes the whole batch at once
        for vectors, vector in zip(out, channel.encode_documents(encoders, images, texts), strict=True):
            if vector is not None:
                vectors[channel.name] = vector
    return out, time.perf_counter() - start
