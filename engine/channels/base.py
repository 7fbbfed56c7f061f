"""What a channel is: one named vector of every point, how ingest encodes it, how a query is encoded
for it, and how search and the pages treat it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from PIL import Image

from engine.schema import SparseVec

if TYPE_CHECKING:
    from engine.models.encoders import Encoders
    from engine.store import Store

Vector = list[float] | SparseVec


class Channel:
    """One channel. A subclass declares its facts as class attributes and implements `dim`,
    `encode_documents` and `encode_query`; `engine.channels.register` makes it part of ingest (a
    vector per image), search (its own mode; hybrid fusion when `fused`) and the pages."""

    name: ClassVar[str]  # the point's vector name, and the channel's name in weights and explanations
    label: ClassVar[str]  # how the pages name it
    mode: ClassVar[str]  # the search mode that searches this channel alone
    fused: ClassVar[bool] = True  # one of the channels hybrid search fuses (RRF)
    sparse: ClassVar[bool] = False  # a sparse vector (term ids and weights) instead of a dense one
    needs_text: ClassVar[bool] = False  # encoded from OCR text: images without text have no such vector
    reads_query_image: ClassVar[bool] = False  # a query image is encoded as an image, not via its text
    image_only: ClassVar[str | None] = None  # set: queries need an image, and this is the error otherwise
    min_score: ClassVar[float | None] = None  # searched alone, hits scoring lower are left out
    version: ClassVar[str] = "1"  # a plug-in channel's encoding: a change re-encodes stored points

    def dim(self, encoders: Encoders) -> int | None:
        """Size of the dense vector with these encoders (None: cannot be encoded here)."""
        raise NotImplementedError

    def encode_documents(
        self, encoders: Encoders, images: list[Image.Image], texts: list[str]
    ) -> list[Vector | None]:
        """One vector (or None) per ingested image: `images` are the analysed views (RGB, short side
        224 px), `texts` their cleaned OCR text ('' when none was read)."""
        raise NotImplementedError

    def encode_query(self, encoders: Encoders, text: str, image: Image.Image | None) -> Vector | None:
        """The query vector, or None when this query gives the channel nothing to match."""
        raise NotImplementedError

    def searchable(self, encoders: Encoders, store: Store) -> bool:
        """Whether search can use the channel with these encoders over this store."""
        return True

    def off_reason(self, encoders: Encoders) -> str:
        """Why searching this channel alone cannot run (searchable() is False)."""
        return f"the {self.name} channel is not available"


class TextChannel(Channel):
    """A channel encoded from the OCR text: documents only where text was read."""

    needs_text = True

    def encode_texts(self, encoders: Encoders, texts: list[str]) -> list[Vector]:
        """Vectors of non-empty texts, in order."""
        raise NotImplementedError

    def encode_documents(self, encoders, images, texts):
        with_text = [i for i, text in enumerate(texts) if text]
        vectors = self.encode_texts(encoders, [texts[i] for i in with_text]) if with_text else []
        out: list[Vector | None] = [None] * len(texts)
        for i, vector in zip(with_text, vectors, strict=True):
            out[i] = vector
        return out
