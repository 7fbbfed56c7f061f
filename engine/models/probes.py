"""The fixed probe set of the int8 check (engine/models/onnx_towers.py): ad-like texts and synthetic ads.

When a tower is quantised to int8, its vectors for these probes are compared with the fp32 tower's:
mean cosine of the same probe, and how many of each probe's 10 nearest other probes stay the same.
The texts mix search queries with ad copy across a dozen product kinds, so every probe has related
and unrelated neighbours; the images are synthetic ads rendered in memory (dataset/synthetic.py),
the same on every run. Changing either changes `*_KEY`, which makes cached checks run again.
"""

from __future__ import annotations

import hashlib
import random

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

PROBE_IMAGES = 24  # the 20 text ads, then text-free ones (render_ad cycles)
IMAGE_SEED = 7
IMAGES_KEY = f"synthetic-ads-v1-{PROBE_IMAGES}-seed{IMAGE_SEED}"


def probe_images():
    """The probe ads as PIL images, rendered in memory (deterministic for a given set of fonts)."""
    from dataset.synthetic import ADS, NO_TEXT_MOTIFS, available_fonts, render_ad

    rng, fonts = random.Random(IMAGE_SEED), available_fonts()
    kinds = len(ADS) + len(NO_TEXT_MOTIFS)
    return [render_ad(i % kinds, rng, fonts)[0] for i in range(PROBE_IMAGES)]
