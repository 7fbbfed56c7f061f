"""A corpus of broken and unusual files (made here, never committed): every bad file gets one clear
reason, every good file is ingested, and the counts add up."""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib

import pytest
from PIL import Image, ImageDraw, ImageFont

from engine.ingest.ingestor import ingest
from engine.store import EdgeStore

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def text_image(text: str, size=(900, 260), mode="RGB", colour="black", background="white") -> Image.Image:
    image = Image.new("RGB", size, background)
    ImageDraw.Draw(image).text((30, 80), text, font=ImageFont.truetype(FONT, 72), fill=colour)
    return image.convert(mode) if mode != "RGB" else image


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def webp_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP")
    return buffer.getvalue()


def png_bytes(image: Image.Image, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **kw)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, sample_dir, truth):
    root = tmp_path_factory.mktemp("hostile")
    good, bad = {}, {}

    def add(name, data, ok, why=""):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        (good if ok else bad)[name] = why

    jpeg = (sample_dir / next(a["file"] for a in truth if a["file"].endswith(".jpg"))).read_bytes()
    add("zero.jpg", b"", False, "empty")
    add("truncated.jpg", jpeg[: len(jpeg) // 2], False, "truncated")
    png = bytearray(png_bytes(text_image("CRC")))
    png[33 + 8] ^= 0xFF  # flip a byte inside the first chunk after IHDR: its CRC no longer matches
    add("bad-crc.png", bytes(png), False, "corrupt")
    add("notes.jpg", b"just some text, not a picture\n" * 20, False, "not an image")
    add("page.png", b"<!doctype html><html><body>hello</body></html>", False, "not an image")
    # a decompression bomb: a tiny PNG header that claims 30000 x 30000 pixels
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    add(
        "bomb.png",
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b""),
        False,
        "decompression bomb",
    )

    add("tiny-1x1.png", png_bytes(Image.new("RGB", (1, 1), "red")), True)
    add("banner-20000x100.png", png_bytes(Image.new("RGB", (20000, 100), "navy")), True)
    cmyk = io.BytesIO()
    text_image("CYAN INK", mode="CMYK").save(cmyk, "JPEG")
    add("cmyk.jpg", cmyk.getvalue(), True)
    add(
        "sixteen-bit.png",
        png_bytes(
            text_image("DEEP", mode="L").convert("I").point(lambda v: v * 256).convert("I;16")
        ),  # 16-bit
        True,
    )
    frames = [text_image("FRAME ONE"), text_image("FRAME TWO", colour="red")]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100)
    add("animated.gif", gif.getvalue(), True)
    rotated = text_image("UPRIGHT").rotate(90, expand=True)  # stored sideways, EXIF says turn it back
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    photo = io.BytesIO()
    rotated.save(photo, "JPEG", exif=exif.tobytes())
    add("exif-rotated.jpg", photo.getvalue(), True)
    palette = text_image("PALETTE").convert("P")
    add(
        "palette-transparent.png", png_bytes(palette, transparency=palette.getpixel((0, 0))), True
    )  # clear background
    add("ünïcödé name with spaces.png", png_bytes(text_image("UNICODE")), True)
    add(
        "sub dir/ok.webp",
        webp_bytes(text_image("WEBP")),
        True,
    )
    (root / "sub dir" / "loop").symlink_to(root)
    # an unreadable file: root reads any mode bits, so a link to nothing stands in for one
    (root / "unreadable.jpg").symlink_to(root / "no-such-target.jpg")
    bad["unreadable.jpg"] = "cannot read"
    return root, good, bad


def test_every_bad_file_has_one_reason_and_every_good_file_is_ingested(tmp_path, corpus, settings, encoders):
    root, good, bad = corpus
    reported = []
    with EdgeStore(tmp_path / "db", "ads") as store:
        report = ingest(
            [root], settings, encoders, store, lambda p, r: reported.append((p, r)), progress=False
        )
        stored = {os.path.relpath(path, root) for _, p in store.scroll() for path in p["paths"]}
        payloads = {os.path.relpath(p["paths"][0], root): p for _, p in store.scroll()}
    failed = {os.path.relpath(p, root): reason for p, reason in report.failed}
    assert set(failed) == set(bad) and stored == set(good)
    for name, why in bad.items():
        assert why in failed[name] or (why == "corrupt" and "truncated" in failed[name]), (name, failed[name])
    assert report.found == len(good) + len(bad) and report.ingested == len(good) and reported == report.failed
    assert payloads["exif-rotated.jpg"]["width"] > payloads["exif-rotated.jpg"]["height"]  # turned upright
    assert "UPRIGHT" in payloads["exif-rotated.jpg"]["ocr_text"]
    assert "ONE" in payloads["animated.gif"]["ocr_text"] and "TWO" not in payloads["animated.gif"]["ocr_text"]
    assert "CYAN" in payloads["cmyk.jpg"]["ocr_text"] and "DEEP" in payloads["sixteen-bit.png"]["ocr_text"]
    assert "PALETTE" in payloads["palette-transparent.png"]["ocr_text"]


def test_a_file_deleted_during_ingest_is_reported_not_fatal(tmp_path, settings, encoders, sample_dir, truth):
    from engine.store import EdgeStore

    folder = tmp_path / "vanishing"
    folder.mkdir()
    for ad in truth[:3]:
        shutil.copy(sample_dir / ad["file"], folder)
    victim = folder / truth[2]["file"].split("/")[-1]

    class DeletingStore(EdgeStore):
        def retrieve(self, ids, with_vectors=False):
            victim.unlink(missing_ok=True)  # gone between discovery and reading
            return super().retrieve(ids, with_vectors)

    with DeletingStore(tmp_path / "db", "ads") as store:
        report = ingest([folder], settings, encoders, store, progress=False)
        assert store.count() == report.ingested
    assert report.found == 3 and len(report.failed) + report.ingested == 3
