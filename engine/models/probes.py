"""The fixed probe set of the int8 check (engine/models/onnx_towers.py): ad-like texts and synthetic ads.

When a tower is quantised to int8, its vectors for these probes are compared with the fp32 tower's:
mean cosine of the same probe, and how many of each probe's 10 nearest other probes stay the same.
The texts mix search queries with ad copy across a dozen product kinds, so every probe has related
and unrelated neighbours; the images are synthetic ads drawn here in memory (`render_ad`), the same on
every run. Changing either changes `*_KEY`, which makes cached checks run again (and the images are
what bench/results/quant_check.md measured). The bundled sample (dataset/synthetic.py) is made of
the same drawn ads, saved to files.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

PROBE_TEXTS: tuple[str, ...] = (
    # queries
    "cheap burger deal",
    "red sports car",
    "I should buy this car because it is safe",
    "electric car with long range",
    "family SUV with seven seats",
    "pizza delivery tonight",
    "fresh coffee in the morning",
    "cold soda on a hot day",
    "bottled mineral water",
    "bank account with no fees",
    "credit card cash back",
    "cheap flights to Europe",
    "beach hotel with sea view",
    "anti aging face cream",
    "whitening toothpaste",
    "smartphone with a great camera",
    "laptop for students",
    "running shoes for marathon",
    "winter jacket waterproof",
    "dog food with real meat",
    "stop smoking campaign",
    "do not drink and drive",
    "concert tickets this weekend",
    "new movie in theaters",
    "supermarket weekly offers",
    # ad copy
    "The safest sedan of the year. Book a test drive today.",
    "Zero emissions. Charge at home overnight.",
    "Double cheeseburger only $3.99 at all restaurants",
    "Two large pizzas for $15, free delivery",
    "Buy one latte, get one free",
    "Pure mountain spring water in a recyclable bottle",
    "Refreshing cola, now with zero sugar",
    "Save more with zero fees. Open an account online in minutes.",
    "Low interest loans for your new home",
    "Fly to Paris from $299. Seats are limited.",
    "Sea view rooms from $89, breakfast included",
    "Radiant skin in seven days. Dermatologist tested.",
    "Whiter teeth with every brush, fresh mint flavour",
    "The phone with the brightest camera. Capture every night in colour.",
    "Fast internet and TV for your whole family",
    "Run faster in lighter shoes",
    "Jackets built for winter storms. Windproof and waterproof.",
    "Healthy food for happy dogs, made with real chicken",
    "Every cigarette costs you minutes of your life",
    "One message can wait. Do not text and drive.",
    "Live music all summer long. Tickets on sale Friday.",
    "Dark chocolate made for sharing, fair trade cocoa",
    "Weekend sale on fruit and vegetables",
    "Luxury watches for every occasion",
    "Protect the rainforest: donate today",
)
TEXTS_KEY = hashlib.sha1("\n".join(PROBE_TEXTS).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------- the drawn ads

# (brand, headline, small print, motif): invented brands, ordinary ad language.
ADS: list[tuple[str, str, str, str]] = [
    ("VOLTARA", "The safest sedan of the year", "Five star crash rating. Book a test drive today.", "car"),
    (
        "BRISKO BURGER",
        "Double cheeseburger deal only $3.99",
        "Limited time offer at all restaurants.",
        "burger",
    ),
    ("AQUAPURA", "Pure mountain spring water", "Recyclable bottle. Stay hydrated.", "bottle"),
    ("CAFE LUMO", "Fresh roasted coffee every morning", "Buy one latte, get one free.", "cup"),
    ("ZENTRA BANK", "Save more with zero fees", "Open an account online in minutes.", "coin"),
    ("SKYLARK AIR", "Fly to Paris from $299", "Book now. Seats are limited.", "plane"),
    ("GLOWA", "Radiant skin in seven days", "Dermatologist tested face cream.", "circle"),
    ("PIXELON", "The phone with the brightest camera", "Capture every night in colour.", "phone"),
    ("SUNNYPAWS", "Healthy food for happy dogs", "Made with real chicken.", "circle"),
    ("FRESHMART", "Weekend sale on fruit and vegetables", "Prices valid until Sunday.", "basket"),
    ("QUANTA SPORT", "Run faster in lighter shoes", "Engineered cushioning for every mile.", "shoe"),
    ("DENTIVO", "Whiter teeth with every brush", "Fluoride toothpaste with fresh mint.", "circle"),
    ("ECOSPARK", "Electric car with zero emissions", "Charge at home overnight.", "car"),
    ("PIZZA NAPOLI", "Two large pizzas for $15", "Free delivery tonight.", "pizza"),
    ("CHOCOVIA", "Dark chocolate made for sharing", "Fair trade cocoa.", "bar"),
    ("BREATHE FREE", "Every cigarette costs you minutes", "Call the free helpline today.", "circle"),
    ("SAFE ROADS", "Do not text and drive", "One message can wait.", "car"),
    ("NORTHPEAK", "Jackets built for winter storms", "Waterproof and windproof.", "mountain"),
    ("MELODIA", "Concert tickets on sale Friday", "Live music all summer long.", "star"),
    ("HOTEL MARINA", "Sea view rooms from $89", "Breakfast included.", "sun"),
]
NO_TEXT_MOTIFS = ["sun", "mountain", "star"]

FONT_FILES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
]
PALETTES = [
    ((20, 40, 90), (240, 240, 250), (255, 200, 40)),
    ((250, 245, 230), (30, 30, 30), (200, 30, 40)),
    ((200, 30, 40), (255, 255, 255), (255, 220, 0)),
    ((15, 15, 15), (245, 245, 245), (90, 200, 250)),
    ((230, 245, 235), (20, 80, 40), (250, 140, 0)),
    ((255, 250, 205), (60, 20, 80), (0, 120, 200)),
]


@dataclass
class SyntheticAd:
    """What one drawn ad shows; `file` is where the sample generator saved it ("" in memory)."""

    file: str
    brand: str
    headline: str
    small_print: str
    motif: str
    text: str
    rotated: bool
    low_contrast: bool
    font: str


def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path and Path(path).exists():
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def available_fonts() -> list[str | None]:
    """System fonts found here, or [None] for Pillow's built-in font."""
    return [f for f in FONT_FILES if Path(f).exists()] or [None]


def _background(size: tuple[int, int], top: tuple, rng: random.Random) -> Image.Image:
    image = Image.new("RGB", size, top)
    if rng.random() < 0.5:  # vertical gradient towards a darker or lighter shade
        shift = rng.choice([-60, 60])
        draw = ImageDraw.Draw(image)
        for y in range(size[1]):
            t = y / size[1]
            draw.line([(0, y), (size[0], y)], fill=tuple(max(0, min(255, c + int(shift * t))) for c in top))
    return image


def _motif(draw: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int], color: tuple) -> None:
    """A simple pictured object so the image channel has something to see."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    dark = tuple(c // 3 for c in color)
    if kind == "car":
        draw.rounded_rectangle([x0, cy - h // 6, x1, cy + h // 6], 12, fill=color)
        draw.polygon([(x0 + w // 4, cy - h // 6), (x0 + w // 3, cy - h // 3), (x1 - w // 3, cy - h // 3),
                      (x1 - w // 5, cy - h // 6)], fill=color)  # fmt: skip
        for wx in (x0 + w // 4, x1 - w // 4):
            draw.ellipse([wx - h // 7, cy + h // 12, wx + h // 7, cy + h // 3], fill=dark)
    elif kind == "burger":
        draw.chord([x0, y0, x1, cy + h // 6], 180, 360, fill=(220, 150, 60))
        draw.rectangle([x0, cy - h // 20, x1, cy + h // 20], fill=(90, 50, 20))
        draw.rectangle([x0 + 5, cy + h // 20, x1 - 5, cy + h // 10], fill=(60, 170, 60))
        draw.rounded_rectangle([x0, cy + h // 10, x1, cy + h // 4], 10, fill=(220, 150, 60))
    elif kind == "bottle":
        draw.rounded_rectangle([cx - w // 6, cy - h // 4, cx + w // 6, y1], 20, fill=color)
        draw.rectangle([cx - w // 14, y0, cx + w // 14, cy - h // 4], fill=color)
    elif kind in ("cup", "coin", "pizza", "sun", "circle"):
        draw.ellipse([cx - h // 3, cy - h // 3, cx + h // 3, cy + h // 3], fill=color, outline=dark, width=6)
        if kind == "sun":
            for a in range(0, 360, 30):
                r = math.radians(a)
                ray = [(cx + math.cos(r) * h * f, cy + math.sin(r) * h * f) for f in (0.38, 0.48)]
                draw.line(ray, fill=color, width=6)
    elif kind == "mountain":
        draw.polygon([(x0, y1), (cx, y0), (x1, y1)], fill=color)
        draw.polygon([(cx - w // 8, y0 + h // 4), (cx, y0), (cx + w // 8, y0 + h // 4)], fill=(255, 255, 255))
    elif kind == "star":
        points = []
        for i in range(10):
            r = (h // 2.2) if i % 2 == 0 else (h // 5)
            a = math.radians(i * 36 - 90)
            points.append((cx + math.cos(a) * r, cy + math.sin(a) * r))
        draw.polygon(points, fill=color)
    else:  # plane, phone, basket, shoe, bar: a recognisable block shape
        draw.rounded_rectangle([cx - w // 4, y0, cx + w // 4, y1], 18, fill=color, outline=dark, width=5)


def _text_block(size: tuple[int, int], text: str, font, color: tuple, angle: float) -> Image.Image:
    """Render text on a transparent layer, rotated by `angle` degrees."""
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    layer = Image.new("RGBA", (right - left + 8, bottom - top + 8), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((4 - left, 4 - top), text, font=font, fill=color)
    return layer.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC) if angle else layer


def _fit_font(path, text: str, max_width: int, start: int, minimum: int = 12):
    size = start
    while size > minimum:
        font = _font(path, size)
        if ImageDraw.Draw(Image.new("L", (1, 1))).textlength(text, font=font) <= max_width:
            return font
        size -= 2
    return _font(path, minimum)


def render_ad(index: int, rng: random.Random, fonts: list[str | None]) -> tuple[Image.Image, SyntheticAd]:
    """Render ad number `index` (ADS cycled, then text-free images)."""
    width, height = rng.choice([(800, 600), (640, 800), (900, 600), (600, 600)])
    bg, fg, accent = PALETTES[index % len(PALETTES)]
    image = _background((width, height), bg, rng)
    draw = ImageDraw.Draw(image)
    if index >= len(ADS):
        motif = NO_TEXT_MOTIFS[index % len(NO_TEXT_MOTIFS)]
        _motif(draw, motif, (width // 5, height // 5, width * 4 // 5, height * 4 // 5), accent)
        image = image.filter(ImageFilter.GaussianBlur(0.6))
        return image, SyntheticAd("", "", "", "", motif, "", False, False, "")
    brand, headline, small, motif = ADS[index]
    font_path = fonts[index % len(fonts)]
    rotated = index % 5 == 3
    low_contrast = index % 7 == 5
    text_color = tuple((b * 3 + f * 2) // 5 for b, f in zip(bg, fg, strict=True)) if low_contrast else fg

    _motif(draw, motif, (width // 4, int(height * 0.38), width * 3 // 4, int(height * 0.72)), accent)
    margin = width // 12
    brand_font = _fit_font(font_path, brand, width - 2 * margin, start=max(48, width // 9))
    layer = _text_block((width, height), brand, brand_font, accent if not low_contrast else text_color, 0)
    image.paste(layer, ((width - layer.width) // 2, height // 14), layer)
    head_font = _fit_font(font_path, headline, width - 2 * margin, start=width // 18)
    layer = _text_block((width, height), headline, head_font, text_color, 6 if rotated else 0)
    image.paste(layer, ((width - layer.width) // 2, int(height * 0.22)), layer)
    small_font = _fit_font(
        fonts[(index + 2) % len(fonts)], small, width - 2 * margin, start=max(16, width // 36)
    )
    layer = _text_block((width, height), small, small_font, text_color, 0)
    image.paste(layer, ((width - layer.width) // 2, int(height * 0.84)), layer)
    text = "\n".join([brand, headline, small])
    return image, SyntheticAd("", brand, headline, small, motif, text, rotated, low_contrast, str(font_path))


PROBE_IMAGES = 24  # the 20 text ads, then text-free ones (render_ad cycles)
IMAGE_SEED = 7
IMAGES_KEY = f"synthetic-ads-v1-{PROBE_IMAGES}-seed{IMAGE_SEED}"


def probe_images() -> list[Image.Image]:
    """The probe ads as PIL images, drawn in memory (deterministic for a given set of fonts)."""
    rng, fonts = random.Random(IMAGE_SEED), available_fonts()
    kinds = len(ADS) + len(NO_TEXT_MOTIFS)
    return [render_ad(i % kinds, rng, fonts)[0] for i in range(PROBE_IMAGES)]
