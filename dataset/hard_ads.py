"""Hard synthetic image ads with known text, for measuring OCR word recall where ads are hard.

Nine kinds of difficulty (`KINDS`): text over photo-like or multi-colour gradient backgrounds, light
text on dark, outlined and shadowed type, rotated lines, decorative and condensed fonts, legal small
print and stylised logo words. Backgrounds are procedural (nothing is downloaded); fonts come from
Debian font packages under /usr/share/fonts, with DejaVu Sans Bold as the fallback when a file is
missing. `truth.json` lists every image with the exact words rendered in it, in reading order.

    python -m dataset.hard_ads --out hard-ads [--per-kind 6] [--seed 11]
"""

from __future__ import annotations

import argparse
import colorsys
import math
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from dataset.synthetic import ADS, save_image, write_truth

KINDS: tuple[str, ...] = (
    "photo_background",
    "gradient_background",
    "light_on_dark",
    "outlined",
    "rotated",
    "decorative_font",
    "condensed_font",
    "small_print",
    "logo_word",
)

_DEJAVU = "/usr/share/fonts/truetype/dejavu/"
_LIBERATION = "/usr/share/fonts/truetype/liberation/"
_COMFORTAA = "/usr/share/fonts/truetype/comfortaa/"
_OTF = "/usr/share/fonts/opentype/"
FALLBACK_FONT = _DEJAVU + "DejaVuSans-Bold.ttf"  # fonts-dejavu-core
PILLOW_DEFAULT = "pillow-default"  # recorded when not even the fallback exists

# Candidate fonts per kind, cycled by image index; the Debian package of each is in the comment.
KIND_FONTS: dict[str, tuple[str, ...]] = {
    "photo_background": (
        _DEJAVU + "DejaVuSans-Bold.ttf",  # fonts-dejavu-core
        _LIBERATION + "LiberationSans-Bold.ttf",  # fonts-liberation
        _DEJAVU + "DejaVuSerif-Bold.ttf",
        _COMFORTAA + "Comfortaa-Bold.ttf",  # fonts-comfortaa
        _LIBERATION + "LiberationSerif-Bold.ttf",
    ),
    "gradient_background": (
        _LIBERATION + "LiberationSans-Bold.ttf",
        _DEJAVU + "DejaVuSans-Bold.ttf",
        _DEJAVU + "DejaVuSerif-Bold.ttf",
        _COMFORTAA + "Comfortaa-Bold.ttf",
        _LIBERATION + "LiberationSans-Regular.ttf",
    ),
    "light_on_dark": (
        _DEJAVU + "DejaVuSans.ttf",
        _DEJAVU + "DejaVuSans-ExtraLight.ttf",  # fonts-dejavu-extra
        _LIBERATION + "LiberationSans-Regular.ttf",
        _COMFORTAA + "Comfortaa-Regular.ttf",
        _DEJAVU + "DejaVuSerif.ttf",
        _LIBERATION + "LiberationSerif-Regular.ttf",
    ),
    "outlined": (
        _DEJAVU + "DejaVuSans-Bold.ttf",
        _LIBERATION + "LiberationSans-Bold.ttf",
        _DEJAVU + "DejaVuSerif-Bold.ttf",
        _COMFORTAA + "Comfortaa-Bold.ttf",
        "/usr/share/fonts/truetype/leckerli-one/LeckerliOne-Regular.ttf",  # fonts-leckerli-one
    ),
    "rotated": (
        _DEJAVU + "DejaVuSans-Bold.ttf",
        _LIBERATION + "LiberationSans-Bold.ttf",
        _DEJAVU + "DejaVuSerif-Bold.ttf",
        _LIBERATION + "LiberationSerif-Bold.ttf",
        _DEJAVU + "DejaVuSans.ttf",
    ),
    "decorative_font": (
        _OTF + "lobster/lobster.otf",  # fonts-lobster
        _OTF + "dancingscript/DancingScript-Bold.otf",  # fonts-dancingscript
        _OTF + "kaushanscript/KaushanScript-Regular.otf",  # fonts-kaushanscript
        "/usr/share/fonts/truetype/leckerli-one/LeckerliOne-Regular.ttf",
        _COMFORTAA + "Comfortaa-Bold.ttf",
        _OTF + "dancingscript/DancingScript-Regular.otf",
    ),
    "condensed_font": (
        _OTF + "bebas-neue/BebasNeue-Regular.otf",  # fonts-bebas-neue (capitals only)
        _LIBERATION + "LiberationSansNarrow-Bold.ttf",
        _OTF + "yanone-kaffeesatz/YanoneKaffeesatz-Regular.otf",  # fonts-yanone-kaffeesatz
        _DEJAVU + "DejaVuSansCondensed-Bold.ttf",
        _LIBERATION + "LiberationSansNarrow-Regular.ttf",
        _DEJAVU + "DejaVuSerifCondensed-Bold.ttf",
    ),
    "small_print": (
        _DEJAVU + "DejaVuSans.ttf",
        _LIBERATION + "LiberationSans-Regular.ttf",
        _DEJAVU + "DejaVuSansCondensed.ttf",
        _LIBERATION + "LiberationSerif-Regular.ttf",
        _LIBERATION + "LiberationSansNarrow-Regular.ttf",
        _DEJAVU + "DejaVuSerif.ttf",
    ),
    "logo_word": (
        _DEJAVU + "DejaVuSans-Bold.ttf",
        _OTF + "bebas-neue/BebasNeue-Bold.otf",
        _COMFORTAA + "Comfortaa-Bold.ttf",
        _OTF + "lobster/lobster.otf",
        _LIBERATION + "LiberationSerif-Bold.ttf",
        _OTF + "kaushanscript/KaushanScript-Regular.otf",
    ),
}

# (brand, headline, small print): the bundled sample's ads plus a few more invented brands.
COPY: list[tuple[str, str, str]] = [(b, h, s) for b, h, s, _ in ADS] + [
    ("LUMIVERA", "Summer collection now in stores", "Free returns within 30 days."),
    ("KORVIK", "Fast broadband for the whole family", "Speeds vary by location."),
    ("TERRANOVA", "Explore the coast by train", "Tickets from $19 each way."),
    ("VELMORA", "Handmade leather bags and shoes", "Visit our flagship store."),
    ("ORBITA", "Stream every match live", "Cancel anytime online."),
    ("MANGOLIA", "Tropical juice with no added sugar", "Serve chilled."),
]
LOGO_WORDS = [
    "VOLTARA", "AQUAPURA", "Glowa", "PIXELON", "SunnyPaws", "FRESHMART", "Dentivo", "ECOSPARK",
    "Chocovia", "NORTHPEAK", "Melodia", "KORVIK", "Lumivera", "ORBITA", "Mangolia", "Velmora",
]  # fmt: skip
LEGAL = [
    "Terms and conditions apply. Offer valid while stocks last.",
    "Prices include VAT. Delivery charges may apply to some orders.",
    "Representative 19.9% APR variable. Credit subject to status and affordability.",
    "Not valid with any other offer. Available in participating stores only.",
    "Results may vary. Always read the label before use.",
    "Savings compared with our standard prices. See website for full details.",
    "Subject to availability. Prices correct at the time of printing.",
    "Images for illustration only. Colours may differ from those shown.",
]
MIN_SIZE = 14  # smallest font size a line is shrunk to (small print is set by cap height instead)
SIZES = [(800, 600), (640, 800), (900, 700), (700, 700), (600, 900), (860, 640)]
JPEG_KINDS = ("photo_background", "light_on_dark")

Colour = tuple[int, int, int]
Box = tuple[int, int, int, int]


@dataclass
class HardAd:
    file: str  # file name inside the output folder
    kind: str  # one of KINDS
    words: list[str]  # every word rendered in the image, in reading order (what OCR should find)
    text: str  # the rendered lines joined by "\n"
    font: str  # font file used
    angle: float  # rotation of the text in degrees, counter-clockwise (0 unless kind == "rotated")


@dataclass
class _Line:
    """One line of text and how it is painted."""

    text: str
    size: int  # font size in px
    colour: Colour = (0, 0, 0)
    style: str = "solid"  # solid | stroked | hollow | shadow
    stroke: int = 0  # outline width in px (stroked, hollow)
    stroke_colour: Colour = (0, 0, 0)  # outline or shadow colour
    tracking: int = 0  # extra px between letters
    second_colour: Colour | None = None  # two-tone logo: letters from `split` on get this colour
    split: int = 0
    contrast: int = 0  # > 0: colour picked at least this luma distance from the background under each word
    foot: bool = False  # placed at the bottom of the image (small print)
    fixed: bool = False  # size must not shrink when fitting (small print cap height)


@dataclass
class _Scene:
    """A background and the lines to draw over it."""

    background: Image.Image
    lines: list[_Line]
    angle: float = 0.0
    centre: tuple[float, float] | None = None  # fixed centre for a single line (logos)


@dataclass
class _Glyphs:
    """A line rasterised as masks, with each word's box and each letter's x in mask coordinates."""

    fill: Image.Image
    outer: Image.Image
    boxes: list[Box] = field(default_factory=list)
    char_x: list[float] = field(default_factory=list)


# ---------------------------------------------------------------- fonts


def resolve_font(path: str) -> str:
    """`path` if the file exists, else DejaVu Sans Bold, else Pillow's built-in font."""
    if Path(path).is_file():
        return path
    return FALLBACK_FONT if Path(FALLBACK_FONT).is_file() else PILLOW_DEFAULT


@lru_cache(maxsize=256)
def _load(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A font file at a pixel size (cached)."""
    if path == PILLOW_DEFAULT:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=64)
def _caps_only(path: str) -> bool:
    """True for fonts that draw lower case as capitals (Bebas Neue): their text is set in capitals."""
    font = _load(path, 40)
    drawn = []
    for text in ("abcdefg", "ABCDEFG"):
        mask = Image.new("L", (400, 80), 0)
        ImageDraw.Draw(mask).text((10, 10), text, font=font, fill=255)
        drawn.append(mask.tobytes())
    return drawn[0] == drawn[1]


def size_for_cap_height(path: str, cap: int) -> int:
    """The smallest font size whose capital H is at least `cap` px tall."""
    for size in range(4, 60):
        top, bottom = _load(path, size).getbbox("H")[1::2]
        if bottom - top >= cap:
            return size
    return 60


# ---------------------------------------------------------------- colours


def _luma(c: Colour) -> float:
    """Perceived brightness 0-255 (Rec. 601)."""
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _hue_colour(hue: float, sat: float, luma: float) -> Colour:
    """A colour of this hue and saturation scaled to the given brightness."""
    rgb = [v * 255 for v in colorsys.hsv_to_rgb(hue % 1.0, sat, 1.0)]
    own = _luma(tuple(rgb))
    if luma <= own:
        rgb = [v * luma / own for v in rgb]
    else:  # brighter than the pure hue allows: mix towards white
        t = (luma - own) / (255 - own)
        rgb = [v + (255 - v) * t for v in rgb]
    return tuple(int(round(min(255, max(0, v)))) for v in rgb)


def _mean(image: Image.Image) -> Colour:
    """The average colour of an image."""
    return image.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))


def _contrasting(mean: Colour, distance: int, hue: float) -> Colour:
    """A tinted colour `distance` luma away from `mean`, towards whichever side has room."""
    luma = _luma(mean)
    target = luma + distance if luma + distance <= 245 or luma - distance < 10 else luma - distance
    return _hue_colour(hue, 0.45, min(250, max(5, target)))


# ---------------------------------------------------------------- backgrounds


def _photo(size: tuple[int, int], rng: random.Random, luma: tuple[float, float]) -> Image.Image:
    """A photographic-looking background: smooth colour field, blurred blobs, streaks and grain."""
    w, h = size
    sw, sh = w // 4, h // 4
    hue = rng.random()

    def tone(hue_shift: float) -> Colour:
        return _hue_colour(hue + hue_shift, rng.uniform(0.2, 0.8), rng.uniform(*luma))

    grid = [[tone(rng.uniform(-0.12, 0.12)) for _ in range(4)] for _ in range(3)]
    small = Image.fromarray(np.array(grid, dtype=np.uint8)).resize((sw, sh), Image.Resampling.BICUBIC)
    blobs = Image.new("RGBA", (sw, sh), (0, 0, 0, 0))
    draw = ImageDraw.Draw(blobs)
    for _ in range(rng.randint(6, 14)):
        r = rng.uniform(0.05, 0.25) * sw
        cx, cy = rng.uniform(0, sw), rng.uniform(0, sh)
        ellipse = [cx - r, cy - r * rng.uniform(0.5, 1.5), cx + r, cy + r]
        draw.ellipse(ellipse, fill=(*tone(rng.choice([0, 0.08, 0.5])), rng.randint(110, 220)))
    blobs = blobs.filter(ImageFilter.GaussianBlur(rng.uniform(3, 9)))
    image = Image.alpha_composite(small.convert("RGBA"), blobs).convert("RGB")
    image = _details(image.resize(size, Image.Resampling.BICUBIC), rng, tone)
    return _grain(image, rng, rng.uniform(4, 10))


def _details(image: Image.Image, rng: random.Random, tone) -> Image.Image:
    """Sharper detail over the smooth field: soft curved stems (branches, edges) and out-of-focus specks."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = image.size
    for _ in range(rng.randint(1, 3)):
        x, y, bend = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-0.4, 0.4)
        heading, points = rng.uniform(0, 2 * math.pi), []
        for _ in range(12):
            points.append((x, y))
            heading += bend
            x, y = x + math.cos(heading) * w / 14, y + math.sin(heading) * w / 14
        stem = (*tone(rng.uniform(-0.2, 0.2)), rng.randint(50, 110))
        draw.line(points, fill=stem, width=rng.randint(4, 12))
    for _ in range(rng.randint(10, 30)):
        r, cx, cy = rng.uniform(4, w / 30), rng.uniform(0, w), rng.uniform(0, h)
        speck = (*tone(rng.uniform(-0.5, 0.5)), rng.randint(40, 120))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=speck)
    layer = layer.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 3)))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _grain(image: Image.Image, rng: random.Random, sigma: float) -> Image.Image:
    """Fine sensor-like noise plus a faint mottled texture."""
    w, h = image.size
    noise = np.random.default_rng(rng.getrandbits(64))
    pixels = np.asarray(image, dtype=np.float32)
    pixels += noise.standard_normal((h, w, 1), dtype=np.float32) * sigma
    pixels += noise.standard_normal((h, w, 3), dtype=np.float32) * (sigma / 3)
    mottle = Image.fromarray(noise.integers(0, 256, (h // 8 + 1, w // 8 + 1), dtype=np.uint8))
    mottle = np.asarray(mottle.resize(image.size, Image.Resampling.BILINEAR), dtype=np.float32)
    pixels += (mottle[..., None] - 128) * 0.06
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _gradient(size: tuple[int, int], colours: list[Colour], angle: float) -> Image.Image:
    """A linear multi-colour gradient at `angle` radians (0 = left to right)."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    stops = np.linspace(0, 1, len(colours))
    channels = [np.interp(t, stops, [c[k] for c in colours]) for k in range(3)]
    return Image.fromarray(np.stack(channels, axis=-1).astype(np.uint8))


def _plain(size: tuple[int, int], rng: random.Random, light: bool) -> Image.Image:
    """A flat or gently shaded background, light or mid-tone."""
    hue = rng.random()
    luma = rng.uniform(200, 245) if light else rng.uniform(90, 150)
    base = _hue_colour(hue, rng.uniform(0.05, 0.5), luma)
    if rng.random() < 0.5:
        return Image.new("RGB", size, base)
    other = _hue_colour(hue + rng.uniform(-0.1, 0.1), rng.uniform(0.05, 0.5), luma + rng.uniform(-25, 10))
    return _gradient(size, [base, other], rng.uniform(0, math.pi))


# ---------------------------------------------------------------- text copy


def _copy(rng: random.Random, sizes: tuple[float, float, float], width: int) -> list[_Line]:
    """Brand, headline and small print of a random ad: 1 to 3 of them, sized relative to the width."""
    brand, headline, small = rng.choice(COPY)
    if rng.random() < 0.3:
        headline = headline.upper()
    count = rng.choice([1, 2, 2, 3, 3])
    texts = [headline] if count == 1 else [brand, headline, small][:count]
    roles = [1] if count == 1 else [0, 1, 2][:count]
    scale = [width * sizes[r] * rng.uniform(0.85, 1.15) * (1.3 if count == 1 else 1) for r in roles]
    return [_Line(text, int(size)) for text, size in zip(texts, scale, strict=True)]


NORMAL_SIZES = (0.11, 0.06, 0.035)  # brand, headline, small print, as a fraction of the image width


# ---------------------------------------------------------------- scenes, one per kind


def _scene_photo_background(rng: random.Random, size: tuple[int, int]) -> _Scene:
    """Mid-tone photo-like background; text only 45-70 luma away from the background under its darkest
    or lightest word, and the background varies under the rest."""
    lines = _copy(rng, NORMAL_SIZES, size[0])
    for line in lines:
        line.contrast = rng.randint(45, 70)
    return _Scene(_photo(size, rng, (50, 210)), lines)


def _scene_gradient_background(rng: random.Random, size: tuple[int, int]) -> _Scene:
    """Strong multi-colour gradient running along the lines, so the contrast varies along each line."""
    light_text = rng.random() < 0.6
    hue = rng.random()
    lumas = [(35, 80), (115, 160)] if light_text else [(185, 235), (95, 135)]
    colours = [
        _hue_colour(hue + i * rng.uniform(0.15, 0.35), rng.uniform(0.6, 1.0), rng.uniform(*lumas[i % 2]))
        for i in range(rng.randint(3, 5))
    ]
    background = _gradient(size, colours, rng.uniform(-0.6, 0.6))
    inks = [(255, 255, 255), (255, 228, 80)] if light_text else [(0, 0, 0), (20, 20, 70)]
    text = rng.choice(inks)
    lines = _copy(rng, NORMAL_SIZES, size[0])
    for line in lines:
        line.colour = text
    return _Scene(background, lines)


def _scene_light_on_dark(rng: random.Random, size: tuple[int, int]) -> _Scene:
    """White or pale text on a dark photo-like or flat dark background."""
    if rng.random() < 0.5:
        background = _photo(size, rng, (8, 70))
    else:
        dark = _hue_colour(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(10, 45))
        background = _grain(Image.new("RGB", size, dark), rng, 3)
    lines = _copy(rng, NORMAL_SIZES, size[0])
    for line in lines:
        line.colour = rng.choice([(255, 255, 255), (250, 240, 210), (210, 230, 255), (230, 230, 230)])
    return _Scene(background, lines)


def _scene_outlined(rng: random.Random, size: tuple[int, int]) -> _Scene:
    """Hollow outlined letters, drop-shadowed letters and fill-plus-stroke letters, one style a line."""
    background = _plain(size, rng, light=rng.random() < 0.6)
    mean = _mean(background)
    ink = _contrasting(mean, rng.randint(110, 160), rng.random())
    lines = _copy(rng, (0.12, 0.075, 0.05), size[0])
    styles = ["hollow", "shadow", "stroked"]
    start = rng.randrange(3)
    for i, line in enumerate(lines):
        line.style = styles[(start + i) % 3]
        line.stroke = max(2, line.size // 22)
        if line.style == "hollow":
            line.stroke_colour = ink
        elif line.style == "shadow":
            line.colour, line.stroke_colour = ink, _contrasting(ink, 90, rng.random())
        else:
            line.colour = rng.choice([(255, 255, 255), (255, 220, 40)])
            line.stroke_colour = (20, 20, 20)
            line.stroke = max(2, line.size // 14)
    return _Scene(background, lines)


def _scene_rotated(rng: random.Random, size: tuple[int, int]) -> _Scene:
    """All lines rotated together by 4-15 degrees either way."""
    background = _plain(size, rng, light=rng.random() < 0.7)
    mean = _mean(background)
    lines = _copy(rng, NORMAL_SIZES, size[0])
    for line in lines:
        line.colour = _contrasting(mean, rng.randint(120, 180), rng.random())
    angle = round(rng.uniform(4, 15) * rng.choice([-1, 1]), 1)
    return _Scene(background, lines, angle=angle)


def _scene_plain_font(rng: random.Random, size: tuple[int, int]) -> _Scene:
    """Clear contrast on a plain background: the difficulty is the font alone."""
    background = _plain(size, rng, light=rng.random() < 0.7)
    mean = _mean(background)
    lines = _copy(rng, (0.12, 0.075, 0.05), size[0])
    for line in lines:
        line.colour = _contrasting(mean, rng.randint(120, 180), rng.random())
    return _Scene(background, lines)


def _scene_small_print(rng: random.Random, size: tuple[int, int], font: str) -> _Scene:
    """One normal headline, then one or two lines of legal text at 9-12 px cap height at the bottom."""
    w = size[0]
    light = rng.random() < 0.7
    background = _plain(size, rng, light) if rng.random() < 0.7 else _photo(size, rng, (150, 230))
    mean = _mean(background)
    _, headline, _ = rng.choice(COPY)
    head = _Line(headline, int(w * rng.uniform(0.055, 0.075)), _contrasting(mean, 150, rng.random()))
    small_size = size_for_cap_height(font, rng.randint(9, 12))
    wrapped = _wrap(_load(font, small_size), rng.choice(LEGAL), int(w * rng.uniform(0.65, 0.82)), 2)
    grey = _contrasting(mean, rng.randint(90, 140), rng.random())
    small = [_Line(t, small_size, grey, foot=True, fixed=True) for t in wrapped]
    return _Scene(background, [head, *small])


BADGE_WIDTH = {"rounded": 0.68, "pill": 0.62, "ellipse": 0.5, "tag": 0.56}  # widest logo word per badge


def _scene_logo_word(rng: random.Random, size: tuple[int, int], font: str) -> _Scene:
    """One brand word as a logo: big spaced letters, one or two colours, on a coloured badge."""
    w, h = size
    word = rng.choice(LOGO_WORDS)
    background = _plain(size, rng, light=rng.random() < 0.6)
    badge = _hue_colour(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(40, 200))
    shape = rng.choice(sorted(BADGE_WIDTH))
    ink = _contrasting(badge, rng.randint(100, 160), rng.random())
    line = _Line(word, int(w * rng.uniform(0.12, 0.17)), ink)
    line.tracking = int(line.size * rng.uniform(0.04, 0.25))
    while _measure(_load(font, line.size), line)[0] > BADGE_WIDTH[shape] * w and line.size > MIN_SIZE:
        _shrink(line)
    if rng.random() < 0.5:
        line.second_colour = _contrasting(badge, rng.randint(100, 160), rng.random())
        line.split = rng.randint(1, len(word) - 1)
    if rng.random() < 0.3:
        line.style, line.stroke, line.stroke_colour = "stroked", max(2, line.size // 25), (255, 255, 255)
    centre = (w / 2 + rng.uniform(-0.05, 0.05) * w, h / 2 + rng.uniform(-0.15, 0.15) * h)
    _badge(ImageDraw.Draw(background), shape, centre, _measure(_load(font, line.size), line), badge, rng)
    return _Scene(background, [line], centre=centre)


def _badge(draw: ImageDraw.ImageDraw, shape: str, centre, text: tuple[int, int], colour: Colour, rng) -> None:
    """Draw a badge (rounded box, pill, ellipse or slanted tag) around a text of size `text`."""
    (cx, cy), (tw, th) = centre, text
    pad_x, pad_y = (tw * 0.22, th * 0.8) if shape == "ellipse" else (tw * 0.1, th * 0.45)
    x0, y0, x1, y1 = cx - tw / 2 - pad_x, cy - th / 2 - pad_y, cx + tw / 2 + pad_x, cy + th / 2 + pad_y
    ring = _contrasting(colour, 80, rng.random()) if rng.random() < 0.5 else None
    if shape == "ellipse":
        draw.ellipse([x0, y0, x1, y1], fill=colour, outline=ring, width=5)
    elif shape == "tag":
        slant = th * 0.5
        draw.polygon([(x0 + slant, y0), (x1 + slant, y0), (x1 - slant, y1), (x0 - slant, y1)], fill=colour)
    else:
        radius = (y1 - y0) / 2 if shape == "pill" else th * 0.3
        draw.rounded_rectangle([x0, y0, x1, y1], radius=int(radius), fill=colour, outline=ring, width=5)


def _scene(kind: str, rng: random.Random, size: tuple[int, int], font: str) -> _Scene:
    """The scene of one image of `kind`."""
    if kind == "small_print":
        return _scene_small_print(rng, size, font)
    if kind == "logo_word":
        return _scene_logo_word(rng, size, font)
    builders = {
        "photo_background": _scene_photo_background,
        "gradient_background": _scene_gradient_background,
        "light_on_dark": _scene_light_on_dark,
        "outlined": _scene_outlined,
        "rotated": _scene_rotated,
        "decorative_font": _scene_plain_font,
        "condensed_font": _scene_plain_font,
    }
    return builders[kind](rng, size)


# ---------------------------------------------------------------- text rasterising and layout


def _wrap(font: ImageFont.FreeTypeFont, text: str, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap to `width` px; words beyond `max_lines` lines are dropped (not rendered)."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        elif len(lines) < max_lines:
            lines.append(word)
        else:
            break
    return lines


def _pad(line: _Line) -> int:
    """Margin around a line's glyphs in its masks (room for strokes and rotation)."""
    return line.stroke + 4


def _measure(font: ImageFont.FreeTypeFont, line: _Line) -> tuple[int, int]:
    """Width and height of a line's masks."""
    left, top, right, bottom = font.getbbox(line.text, stroke_width=line.stroke)
    width = right - left + line.tracking * (len(line.text) - 1)
    return int(width) + 2 * _pad(line), bottom - top + 2 * _pad(line)


def _rasterise(font: ImageFont.FreeTypeFont, line: _Line) -> _Glyphs:
    """Draw a line into a fill mask and an outer (stroked) mask; record word boxes and letter positions."""
    left, top = font.getbbox(line.text, stroke_width=line.stroke)[:2]
    size = _measure(font, line)
    x0, y0 = _pad(line) - left, _pad(line) - top
    char_x = [x0 + font.getlength(line.text[:i]) + i * line.tracking for i in range(len(line.text) + 1)]
    fill, outer = Image.new("L", size, 0), Image.new("L", size, 0)
    pieces = [(line.text, x0)] if not line.tracking else list(zip(line.text, char_x, strict=False))
    fill_draw, outer_draw = ImageDraw.Draw(fill), ImageDraw.Draw(outer)
    for piece, x in pieces:
        fill_draw.text((x, y0), piece, font=font, fill=255)
        outer_draw.text((x, y0), piece, font=font, fill=255, stroke_width=line.stroke, stroke_fill=255)
    boxes, start = [], 0
    for word in line.text.split():
        start = line.text.index(word, start)
        left, right = _word_span(font, line, char_x, start, start + len(word))
        boxes.append((max(0, int(left)), 0, min(size[0], math.ceil(right)), size[1]))
        start += len(word)
    return _Glyphs(fill, outer, boxes, char_x)


def _word_span(font, line: _Line, char_x: list[float], start: int, end: int) -> tuple[float, float]:
    """Left and right x of the letters start..end-1: their advances and any ink reaching past them."""
    left, right = char_x[start], char_x[end] - line.tracking
    for i in range(start, end):
        ink_left, _, ink_right, _ = font.getbbox(line.text[i])
        left, right = min(left, char_x[i] + ink_left), max(right, char_x[i] + ink_right)
    return left - line.stroke, right + line.stroke


def _rotate(glyphs: _Glyphs, angle: float) -> _Glyphs:
    """Turn a line's masks counter-clockwise by `angle` degrees; boxes become the turned boxes' bounds."""
    if not angle:
        return glyphs
    w, h = glyphs.fill.size
    fill = glyphs.fill.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    outer = glyphs.outer.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    boxes = []
    for x0, y0, x1, y1 in glyphs.boxes:
        corners = [_turn(x - w / 2, y - h / 2, angle) for x in (x0, x1) for y in (y0, y1)]
        xs = [fill.width / 2 + x for x, _ in corners]
        ys = [fill.height / 2 + y for _, y in corners]
        boxes.append((int(min(xs)), int(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))))
    return _Glyphs(fill, outer, boxes, glyphs.char_x)


def _turn(dx: float, dy: float, angle: float) -> tuple[float, float]:
    """Offset (dx, dy) turned counter-clockwise on screen (y points down) by `angle` degrees."""
    a = math.radians(angle)
    return dx * math.cos(a) + dy * math.sin(a), -dx * math.sin(a) + dy * math.cos(a)


def _layout(size: tuple[int, int], dims: list[tuple[int, int]], scene: _Scene, rng: random.Random) -> list:
    """Centre point of each line: main lines stacked at a random height, foot lines at the bottom."""
    w, h = size
    margin = w // 16
    if scene.centre:
        return [scene.centre]
    gap = int(h * 0.03)
    main = [i for i, line in enumerate(scene.lines) if not line.foot]
    foot = [i for i, line in enumerate(scene.lines) if line.foot]
    centred = scene.angle or rng.random() < 0.6
    foot_height = sum(dims[i][1] for i in foot)
    main_height = sum(dims[i][1] for i in main) + gap * (len(main) - 1)
    room = h - 2 * margin - foot_height - (gap if foot else 0) - main_height
    top = h / 2 - main_height / 2 if scene.angle else margin + rng.uniform(0, max(0, room))
    centres: dict[int, tuple[float, float]] = {}
    for group, y in ((main, top), (foot, h - margin - foot_height)):
        for i in group:
            width, height = dims[i]
            centres[i] = (w / 2 if centred else margin + width / 2, y + height / 2)
            y += height + (gap if group is main else 0)
    if scene.angle:  # turn the whole block about the image centre
        for i, (x, y) in centres.items():
            dx, dy = _turn(x - w / 2, y - h / 2, scene.angle)
            centres[i] = (w / 2 + dx, h / 2 + dy)
    return [centres[i] for i in range(len(scene.lines))]


def _fits(size: tuple[int, int], dims: list[tuple[int, int]], scene: _Scene) -> bool:
    """Whether the stacked lines, turned by the scene's angle, stay inside the margins."""
    w, h = size
    margin, gap = w // 16, int(h * 0.03)
    width = max(d[0] for d in dims)
    height = sum(d[1] for d in dims) + gap * (len(dims) - 1 + any(line.foot for line in scene.lines))
    a = math.radians(abs(scene.angle))
    turned_w = width * math.cos(a) + height * math.sin(a)
    turned_h = width * math.sin(a) + height * math.cos(a)
    return turned_w <= w - 2 * margin and turned_h <= h - 2 * margin


def _shrink(line: _Line) -> None:
    """Make a line about 8% smaller, its outline and letter spacing with it."""
    line.size = max(MIN_SIZE, int(line.size * 0.92))
    line.stroke = max(1, round(line.stroke * 0.92)) if line.stroke else 0
    line.tracking = int(line.tracking * 0.92)


def _fit(size: tuple[int, int], scene: _Scene, font: str) -> list[tuple[int, int]]:
    """Shrink lines wider than the margins allow, then all lines until the block fits; return mask sizes."""
    width = size[0] - 2 * (size[0] // 16)
    for line in scene.lines:
        while not line.fixed and line.size > MIN_SIZE and _measure(_load(font, line.size), line)[0] > width:
            _shrink(line)
    for _ in range(30):
        dims = [_measure(_load(font, line.size), line) for line in scene.lines]
        if _fits(size, dims, scene):
            break
        for line in scene.lines:
            if not line.fixed:
                _shrink(line)
    return dims


# ---------------------------------------------------------------- painting


def _paint(image: Image.Image, background: Image.Image, line: _Line, glyphs: _Glyphs, xy: tuple[int, int]):
    """Composite one line's masks onto the image in the line's style."""
    x, y = xy
    if line.style == "shadow":
        offset = max(2, line.size // 18)
        shadow = glyphs.outer.filter(ImageFilter.GaussianBlur(max(1, line.size // 40)))
        image.paste(line.stroke_colour, (x + offset, y + offset), shadow)
    if line.style in ("stroked", "hollow"):
        image.paste(line.stroke_colour, (x, y), glyphs.outer)
    if line.style == "hollow":  # the letters' inside shows the background again
        inside = background.crop((x, y, x + glyphs.fill.width, y + glyphs.fill.height))
        image.paste(inside, (x, y), glyphs.fill)
    elif line.second_colour:
        ink = Image.new("RGB", glyphs.fill.size, line.colour)
        split = int(glyphs.char_x[line.split] - line.tracking / 2)
        ink.paste(line.second_colour, (split, 0, ink.width, ink.height))
        image.paste(ink, (x, y), glyphs.fill)
    else:
        image.paste(line.colour, (x, y), glyphs.fill)


def _auto_colour(line: _Line, background: Image.Image, boxes: list[Box], hue: float) -> None:
    """For lines with a `contrast`: a colour at least that luma distance from the background under every word,
    lighter or darker, whichever needs the smaller step from the average word background."""
    if not line.contrast:
        return
    lumas = [_luma(_mean(background.crop(box))) for box in boxes]
    lighter, darker = max(lumas) + line.contrast, min(lumas) - line.contrast
    average = sum(lumas) / len(lumas)
    if lighter > 250 or (darker >= 5 and average - darker < lighter - average):
        target = darker if darker >= 5 else (0 if min(lumas) > 255 - max(lumas) else 255)
    else:
        target = lighter
    line.colour = _hue_colour(hue, 0.45, min(250, max(5, target)))


# ---------------------------------------------------------------- one image, all images


def _font_for(kind: str, index: int) -> str:
    """The font file an image uses: the kind's candidates cycled by index, with fallback."""
    candidates = KIND_FONTS[kind]
    return resolve_font(candidates[index % len(candidates)])


def render(kind: str, index: int, seed: int, with_text: bool = True) -> tuple[Image.Image, HardAd, list[Box]]:
    """Render image `index` of `kind`, with each word's box; `with_text=False` leaves the text out."""
    rng = random.Random(f"{seed}/{kind}/{index}")
    size = rng.choice(SIZES)
    font = _font_for(kind, index)
    scene = _scene(kind, rng, size, font)
    if _caps_only(font):
        for line in scene.lines:
            line.text = line.text.upper()
    dims = _fit(size, scene, font)
    centres = _layout(size, dims, scene, rng)
    background, image = scene.background, scene.background.copy()
    boxes: list[Box] = []
    for line, centre in zip(scene.lines, centres, strict=True):
        glyphs = _rotate(_rasterise(_load(font, line.size), line), scene.angle)
        xy = (int(centre[0] - glyphs.fill.width / 2), int(centre[1] - glyphs.fill.height / 2))
        placed = [(x0 + xy[0], y0 + xy[1], x1 + xy[0], y1 + xy[1]) for x0, y0, x1, y1 in glyphs.boxes]
        _auto_colour(line, background, placed, rng.random())
        if with_text:
            _paint(image, background, line, glyphs, xy)
        boxes += placed
    lines = [line.text for line in scene.lines]
    ext = ".jpg" if kind in JPEG_KINDS else ".png"
    words = " ".join(lines).split()
    ad = HardAd(f"{kind}-{index:02d}{ext}", kind, words, "\n".join(lines), font, scene.angle)
    return image, ad, boxes


def generate_hard(out: Path, per_kind: int = 6, seed: int = 11) -> list[HardAd]:
    """Render per_kind images of every kind into `out`, write out/truth.json (list of HardAd dicts).

    Deterministic for a seed; image i of a kind is the same whatever per_kind is.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ads = []
    for kind in KINDS:
        for index in range(per_kind):
            image, ad, _ = render(kind, index, seed)
            save_image(image, out / ad.file, jpeg_quality=88)
            ads.append(ad)
    write_truth(out, ads)
    return ads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate hard synthetic image ads with known words.")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--per-kind", type=int, default=6, help="images of each kind (default 6)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    ads = generate_hard(Path(args.out), args.per_kind, args.seed)
    print(f"wrote {len(ads)} hard ads ({len(KINDS)} kinds) and truth.json to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
