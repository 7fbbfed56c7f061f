"""Large pictures (issue 21, item 12): the pixel setting is the one limit (Pillow's own follows it),
an 88-megapixel query image is decoded off the event loop at the size a query needs, and its memory is
given back once the answer is sent."""

from __future__ import annotations

import asyncio
import gc
import struct
import zlib

import httpx
import pytest
from PIL import Image

from engine.errors import ImageError
from engine.media.images import check_image, decode_image


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def flat_png(width: int, height: int, colour: tuple[int, ...] = (200, 30, 30)) -> bytes:
    """A one-colour PNG (RGB, or grey for one value) of any size, built a row at a time: a few
    hundred kB for ~100 MP, and never the whole picture in this process's memory."""
    row = b"\x00" + bytes(colour) * width  # filter type 0, then the pixels
    deflate = zlib.compressobj(9)
    parts = [deflate.compress(row) for _ in range(height)]
    parts.append(deflate.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2 if len(colour) == 3 else 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def rss_mib() -> float:
    """Resident memory of this process (the uvicorn server of `api_server` runs in one of its threads)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status here")


@pytest.fixture(scope="module")
def hundred_mp() -> bytes:
    return flat_png(10_000, 10_000, (90,))  # 100,000,000 grey pixels, ~120 kB: over Pillow's 89.5 MP default


@pytest.fixture(scope="module")
def eighty_eight_mp() -> bytes:
    return flat_png(11_000, 8_000)  # the 88 MP PNG (RGB here: the most memory per pixel)


@pytest.fixture(scope="module")
def http(api_server):
    with httpx.Client(base_url=api_server, timeout=300) as client:
        yield client


def test_the_setting_is_the_limit_above_pillows_default(hundred_mp):
    """120 MP allowed (the default): a 100 MP image decodes, although Pillow alone refuses it."""
    assert check_image(hundred_mp, 120_000_000) == "PNG"
    assert Image.MAX_IMAGE_PIXELS == 120_000_000  # Pillow's own limit follows the setting
    query = decode_image(hundred_mp, 120_000_000, reduce_to=1600)
    assert (query.width, query.height, query.format) == (10_000, 10_000, "PNG")
    assert query.image.size == (1600, 1600) and query.image.mode == "RGB"


@pytest.mark.parametrize("limit", [50_000_000, 99_999_999])
def test_below_the_setting_the_image_is_refused_naming_the_limit(hundred_mp, limit):
    for decode in (check_image, decode_image):
        with pytest.raises(ImageError, match=f"100,000,000 pixels; limit {limit:,}.*decompression bomb"):
            decode(hundred_mp, limit)
    assert limit == Image.MAX_IMAGE_PIXELS


def test_a_query_jpeg_is_decoded_reduced_and_upright():
    import io

    sideways = Image.new("RGB", (1200, 800), (10, 120, 200))  # stored sideways; EXIF: turn 90 degrees
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", exif=exif.tobytes())
    query = decode_image(buffer.getvalue(), 120_000_000, reduce_to=200)
    assert (query.width, query.height) == (800, 1200)  # the upright size of the file
    assert query.image.size == (200, 300) and query.image.mode == "RGB"
    full = decode_image(buffer.getvalue(), 120_000_000)
    assert full.image.size == (800, 1200) == (full.width, full.height)


def test_query_images_are_decoded_off_the_event_loop(http, monkeypatch):
    """The decode (and the search after it) run in a worker thread: the event loop keeps serving."""
    import engine.media.originals

    on_loop = []

    def recording(module):
        real = module.decode_image

        def decode(*args, **kwargs):
            try:
                asyncio.get_running_loop()
                on_loop.append(True)
            except RuntimeError:
                on_loop.append(False)
            return real(*args, **kwargs)

        return decode

    originals = engine.media.originals
    monkeypatch.setattr(originals, "decode_image", recording(originals))  # query_image's decode
    query = flat_png(400, 300, (30, 160, 60))
    assert http.post("/api/search/image", files={"file": ("q.png", query)}).status_code == 200
    assert http.post("/search-image", files={"file": ("q.png", query)}).status_code == 200
    assert on_loop == [False, False]


def test_an_88_megapixel_query_gives_its_memory_back(http, eighty_eight_mp):
    """Refused (422) or answered, and the server's resident memory ends near where it started.

    The margin, 300 MiB, is below one decoded copy of this picture (88 MP x 4 bytes = 336 MiB: Pillow
    keeps RGB in 4 bytes a pixel), so any full-size copy kept (before the fix, glibc kept the freed
    pages of the decode and its copies) fails it; it leaves room for the allocator's own bookkeeping,
    buffers a first large request sizes once (the HTTP body), and whatever other threads of this test
    process allocate meanwhile."""
    small = flat_png(1000, 700, (30, 60, 160))
    for path in ("/api/search/image", "/search-image"):  # warm up: OCR and models loaded, pools made
        assert http.post(path, files={"file": ("small.png", small)}).status_code == 200
    gc.collect()
    before = rss_mib()
    api = http.post("/api/search/image", files={"file": ("big.png", eighty_eight_mp)})
    page = http.post("/search-image", files={"file": ("big.png", eighty_eight_mp)})
    assert api.status_code in (200, 422), api.text
    assert page.status_code == 200
    if api.status_code == 200:
        assert "hits" in api.json()
    gc.collect()
    after = rss_mib()
    assert after - before < 300, f"resident memory {before:.0f} MiB before the queries, {after:.0f} MiB after"
