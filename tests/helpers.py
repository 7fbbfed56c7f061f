"""Small helpers several test files share (imported as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import io
import random
import uuid

from PIL import Image, ImageDraw


def png_bytes() -> bytes:
    """A small PNG no other test uploads (random colours and text): accepted, it would be ingested."""
    rng = random.Random(uuid.uuid4().int)
    image = Image.new("RGB", (200, 120), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 190, 110), outline=(0, 0, 0), width=3)
    draw.text((20, 50), f"SALE {rng.randrange(10**6)}", fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
