"""The built-in channels: image (CLIP or SigLIP), text (dense sentence embedding of the OCR text),
keywords (BM25 over the OCR text) and creative (the perceptual fingerprint, for same-creative search)."""

from __future__ import annotations

from engine.channels.base import Channel, TextChannel
from engine.models.creative import CREATIVE_DIM, THRESHOLD, creative_vector
from engine.schema import CREATIVE_CHANNEL, IMAGE_CHANNEL, SPARSE_CHANNEL, TEXT_CHANNEL

IMAGE_OFF_NOTE = "image channel off (no CLIP weights): text channels only"


class ImageChannel(Channel):
    """What is pictured: the image-text model's image vector; text queries through its text tower."""

    name, label, mode = IMAGE_CHANNEL, "image", "visual"
    reads_query_image = True

    def dim(self, encoders):
        return encoders.clip.dim if encoders.clip else None

    def encode_documents(self, encoders, images, texts):
        if not encoders.clip:
            return [None] * len(images)
        return [v.tolist() for v in encoders.clip.encode_images(images)]

    def encode_query(self, encoders, text, image):
        if image is not None:
            return encoders.clip.encode_images([image.convert("RGB")])[0].tolist()
        return encoders.clip.encode_texts([text])[0].tolist()

    def searchable(self, encoders, store):
        meta = store.metadata()  # a collection built without CLIP has no image vectors to search
        return encoders.visual and bool(meta["visual"] if "visual" in meta else store.count(self.name))

    def off_reason(self, encoders):
        return (
            "visual search needs CLIP: the weights could not be loaded"
            + (f" ({encoders.clip_error})" if encoders.clip_error else "")
            + " or the collection was built without them"
        )


class DenseTextChannel(TextChannel):
    """What the printed words mean: a sentence embedding of the OCR text."""

    name, label, mode = TEXT_CHANNEL, "text", "text"

    def dim(self, encoders):
        return encoders.dense.dim

    def encode_texts(self, encoders, texts):
        return [v.tolist() for v in encoders.dense.encode(texts)]

    def encode_query(self, encoders, text, image):
        return encoders.dense.encode([text])[0].tolist()


class KeywordsChannel(TextChannel):
    """Which printed words: BM25 over the OCR text (with character n-grams for OCR errors)."""

    name, label, mode = SPARSE_CHANNEL, "keywords", "keyword"
    sparse = True

    def dim(self, encoders):
        return None  # sparse: no fixed size

    def encode_texts(self, encoders, texts):
        return encoders.sparse.encode_documents(texts)

    def encode_query(self, encoders, text, image):
        sparse = encoders.sparse.encode_query(text)
        return sparse if sparse.indices else None  # only stopwords: nothing to match


class CreativeChannel(Channel):
    """The same ad resized, recompressed, cropped a little, restickered: the perceptual fingerprint
    alone (no model), only hits at or above its same-creative threshold."""

    name, label, mode = CREATIVE_CHANNEL, "creative", "duplicate"
    fused = False
    reads_query_image = True
    image_only = "duplicate mode finds copies of an image: give a query image, not text"
    min_score = THRESHOLD

    def dim(self, encoders):
        return CREATIVE_DIM

    def encode_documents(self, encoders, images, texts):
        return [creative_vector(image, viewed=True) for image in images]

    def encode_query(self, encoders, text, image):
        return creative_vector(image) if image is not None else None


BUILTIN = (ImageChannel(), DenseTextChannel(), KeywordsChannel(), CreativeChannel())
