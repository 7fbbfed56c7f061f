"""Synthetic image ads with known text: the bundled sample, made here, owned by nobody else.

Each ad has a background (flat or gradient), a pictured motif (car, burger, bottle, ...), a brand
name, a headline and small print in varied fonts and sizes; some are rotated or low-contrast, and a
few carry no text at all. The engine draws them (engine.models.probes: its int8 check probes with
the same ads); this module saves them as files. `truth.json` records the exact text rendered in
every image. `metadata.csv` (its column types in `metadata.schema.json`) gives each image made-up
campaign data for `adsearch ingest --metadata`: brand, category, campaign start date, budget,
rating, media channels.

    python -m dataset.synthetic --out sample-ads [--count 24] [--seed 7]
    adsearch ingest sample-ads/images --metadata sample-ads/metadata.csv \
        --schema sample-ads/metadata.schema.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

from PIL import Image

# The ads are drawn by the engine (its int8 check probes with the same ones): one renderer for both.
from engine.models.probes import ADS, NO_TEXT_MOTIFS, SyntheticAd, available_fonts, render_ad

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
