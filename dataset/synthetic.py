"""Synthetic image ads with known text: the bundled sample, made here, owned by nobody else.

Each ad has a background (flat or gradient), a pictured motif (car, burger, bottle, ...), a brand
name, a headline and small print in varied fonts and sizes; some are rotated or low-contrast, and a
few carry no text at all. `truth.json` records the exact text rendered in every image.
`metadata.csv` (its column types in `metadata.schema.json`) gives each image made-up campaign data for
`adsearch ingest --metadata`: brand, category, campaign start date, budget, rating, media channels.

    python -m dataset.synthetic --out sample-ads [--count 24] [--seed 7]
    adsearch ingest sample-ads/images --metadata sample-ads/metadata.csv \
        --schema sample-ads/metadata.schema.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

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
# Made-up campaign data (metadata.csv): each brand's category; the rest follows from the ad's index.
CATEGORIES = {
    "VOLTARA": "cars", "BRISKO BURGER": "food", "AQUAPURA": "drinks", "CAFE LUMO": "drinks",
    "ZENTRA BANK": "finance", "SKYLARK AIR": "travel", "GLOWA": "beauty", "PIXELON": "electronics",
    "SUNNYPAWS": "pets", "FRESHMART": "food", "QUANTA SPORT": "sports", "DENTIVO": "beauty",
    "ECOSPARK": "cars", "PIZZA NAPOLI": "food", "CHOCOVIA": "food", "BREATHE FREE": "public service",
    "SAFE ROADS": "public service", "NORTHPEAK": "clothing", "MELODIA": "entertainment",
    "HOTEL MARINA": "travel",
}  # fmt: skip
MEDIA_CHANNELS = ["print", "web", "social", "outdoor", "tv"]
METADATA_SCHEMA = {
    "brand": "keyword",
    "category": "keyword",
    "campaign_start": "datetime",
    "budget": "integer",
    "rating": "float",
    "channels": "keywords",
}

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


def generate(out: str | Path, count: int | None = None, seed: int = 7) -> list[SyntheticAd]:
    """Write `count` ads (default: every text ad plus 3 without text) and `truth.json` into `out`."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    count = count if count is not None else len(ADS) + len(NO_TEXT_MOTIFS)
    rng = random.Random(seed)
    fonts = available_fonts()
    ads = []
    for index in range(count):
        image, ad = render_ad(index % (len(ADS) + len(NO_TEXT_MOTIFS)), rng, fonts)
        slug = (ad.brand or f"notext-{ad.motif}").lower().replace(" ", "-").replace(".", "")
        ext = ".jpg" if index % 3 == 1 else ".png"
        ad.file = f"images/{index:03d}-{slug}{ext}"
        save_image(image, out / ad.file, jpeg_quality=90)
        ads.append(ad)
    write_truth(out, ads)
    write_metadata(out, ads)
    return ads


def save_image(image: Image.Image, path: Path, jpeg_quality: int) -> None:
    """PNG or JPEG by the file's suffix (JPEG at the given quality)."""
    if path.suffix == ".jpg":
        image.save(path, quality=jpeg_quality)
    else:
        image.save(path)


def write_truth(out: Path, ads: list) -> None:
    """truth.json: every ad's record (a dataclass) as a JSON list."""
    (out / "truth.json").write_text(json.dumps([asdict(a) for a in ads], indent=2))


def campaign(index: int, ad: SyntheticAd) -> dict[str, str]:
    """Made-up campaign data for ad number `index`, derived from it alone (no random draws, so the
    images stay as they were): one CSV row, its path relative to the images folder."""
    channels = [c for bit, c in enumerate(MEDIA_CHANNELS) if (index * 7 + 3) >> bit & 1] or ["web"]
    return {
        "path": ad.file.removeprefix("images/"),
        "brand": ad.brand,
        "category": CATEGORIES.get(ad.brand, ""),
        "campaign_start": (date(2023, 1, 2) + timedelta(days=23 * index)).isoformat(),
        "budget": str(5000 * (1 + index * 7 % 12)),
        "rating": f"{2.5 + (index * 5 % 6) / 2:.1f}",
        "channels": ";".join(channels),
    }


def write_metadata(out: Path, ads: list[SyntheticAd]) -> None:
    """metadata.csv (one row per image; no brand or category for the images without text) and
    metadata.schema.json (the column types, for `adsearch ingest --schema`)."""
    with open(out / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", *METADATA_SCHEMA])
        writer.writeheader()
        writer.writerows(campaign(index, ad) for index, ad in enumerate(ads))
    (out / "metadata.schema.json").write_text(json.dumps(METADATA_SCHEMA, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate synthetic image ads with known text.")
    parser.add_argument("--out", default="sample-ads", help="output folder (default sample-ads)")
    parser.add_argument(
        "--count", type=int, help="number of images (default: all 20 text ads + 3 without text)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    ads = generate(args.out, args.count, args.seed)
    print(
        f"wrote {len(ads)} synthetic ads to {args.out}/images, their text to {args.out}/truth.json and "
        f"campaign data to {args.out}/metadata.csv (types: metadata.schema.json)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
