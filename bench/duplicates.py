"""Duplicate search ("same creative, anywhere") on generated variants of the ads377 images.

Every original gets two variants, of two of five kinds in turn (resize 50-90 %, JPEG quality 30-90,
a 5-10 % crop, a price sticker, a colour/brightness shift), seeded. Originals and variants are
fingerprinted (engine.models.creative) and stored in an EdgeStore in a temporary folder; then every variant
queries the creative channel through the store (the call `--mode duplicate` makes) and
- precision = share of the returned items (score >= threshold) that are the same creative,
- recall = share of the same creative's other copies (original + sibling variant) returned,
micro-averaged, per variant kind and overall, for a sweep of thresholds (the shipped one marked).
Distinct ads of ads377 that pass the threshold count as errors, even if they are real near-copies.

    .venv/bin/python -m bench.duplicates [--limit N]
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from bench.common import ADS377, write_results
from engine.models.creative import CREATIVE_DIM, THRESHOLD, VERSION, creative_vector
from engine.schema import CREATIVE_CHANNEL
from engine.store import ChannelQuery, EdgeStore, PointData, point_id

KINDS = ("resize", "jpeg", "crop", "sticker", "colour")
SWEEP = [round(0.40 + 0.05 * i, 2) for i in range(11)]  # 0.40 .. 0.90
NEIGHBOURS = 20


def variant(image: Image.Image, kind: str, rng: random.Random) -> tuple[Image.Image, str]:
    """One generated copy of an ad and what was done to it."""
    w, h = image.size
    if kind == "resize":
        s = rng.uniform(0.5, 0.9)
        return image.resize((max(1, int(w * s)), max(1, int(h * s))), Image.Resampling.BILINEAR), f"x{s:.2f}"
    if kind == "jpeg":
        q = rng.randint(30, 90)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=q)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), f"q{q}"
    if kind == "crop":
        f = rng.uniform(0.05, 0.10)  # share of each side cut off, split at random between the two edges
        left, top = rng.uniform(0, f), rng.uniform(0, f)
        box = (int(w * left), int(h * top), int(w * (1 - (f - left))), int(h * (1 - (f - top))))
        return image.crop(box), f"{f:.0%}"
    if kind == "sticker":
        out = image.copy()
        draw = ImageDraw.Draw(out)
        sw, sh = int(w * 0.22), int(h * 0.10)
        x, y = rng.randint(0, w - sw), rng.randint(0, h - sh)
        draw.rectangle((x, y, x + sw, y + sh), fill=(230, 30, 30))
        font = ImageFont.load_default(size=max(10, sh // 2))
        draw.text((x + 5, y + 5), f"${rng.randint(5, 99)}.99", fill="white", font=font)
        return out, "22x10%"
    b, c = rng.uniform(0.85, 1.15), rng.uniform(0.7, 1.3)
    return ImageEnhance.Color(ImageEnhance.Brightness(image).enhance(b)).enhance(c), f"b{b:.2f} c{c:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="only the first N ads (0: all 377)")
    args = parser.parse_args()
    rng = random.Random(13)
    files = sorted((ADS377 / "images").glob("*/*.jpg"))
    files = files[: args.limit] if args.limit else files
    start = time.perf_counter()
    items = []  # (id, ad index, kind, detail, vector)
    for index, path in enumerate(files):
        image = Image.open(path).convert("RGB")
        items.append((f"o{index}", index, "original", path.name, creative_vector(image)))
        for kind in (KINDS[index % 5], KINDS[(index + 2) % 5]):
            copy, detail = variant(image, kind, rng)
            items.append((f"v{index}-{kind}", index, kind, detail, creative_vector(copy)))
    hash_s = time.perf_counter() - start
    by_id = {point_id(key): (ad, kind) for key, ad, kind, _, _ in items}
    copies = {}
    for _, ad, _, _, _ in items:
        copies[ad] = copies.get(ad, 0) + 1
    # counts[threshold][kind] = [returned, relevant returned, relevant]
    counts = {t: {k: [0, 0, 0] for k in KINDS} for t in SWEEP}
    false_links: list[tuple[str, str, float]] = []
    query_ms = []
    with tempfile.TemporaryDirectory(prefix="adsearch-dup-") as tmp:
        store = EdgeStore(Path(tmp), "dups")
        store.ensure_collection({CREATIVE_CHANNEL: CREATIVE_DIM})
        store.upsert(
            [
                PointData(point_id(key), {CREATIVE_CHANNEL: vec}, {"ad": ad, "kind": kind})
                for key, ad, kind, _, vec in items
            ]
        )
        store.optimize()
        for key, ad, kind, _, vec in items:
            if kind == "original":
                continue
            t0 = time.perf_counter()
            result = store.search(
                [ChannelQuery(CREATIVE_CHANNEL, vec)], [1.0], NEIGHBOURS + 1, 0, NEIGHBOURS + 1, 5
            )
            query_ms.append((time.perf_counter() - t0) * 1000)
            hits = [(by_id[h.id][0], h.score, h.id) for h in result.fused if h.id != point_id(key)]
            relevant = copies[ad] - 1
            for t in SWEEP:
                passed = [(a, s) for a, s, _ in hits if s >= t]
                row = counts[t][kind]
                row[0] += len(passed)
                row[1] += sum(1 for a, _ in passed if a == ad)
                row[2] += relevant
            if THRESHOLD in SWEEP:
                false_links += [
                    (key, files[a].name, round(s, 3)) for a, s, _ in hits if s >= THRESHOLD and a != ad
                ]
        store.close()
    total_s = time.perf_counter() - start

    def pr(rows: list[list[int]]) -> dict:
        returned, right, relevant = (sum(r[i] for r in rows) for i in range(3))
        return {
            "precision": round(right / returned, 4) if returned else 1.0,
            "recall": round(right / relevant, 4) if relevant else 1.0,
            "returned": returned,
            "relevant": relevant,
        }

    sweep = {
        str(t): {"overall": pr(list(counts[t].values())), **{k: pr([counts[t][k]]) for k in KINDS}}
        for t in SWEEP
    }
    shipped = sweep[str(THRESHOLD)]
    data = {
        "fingerprint": VERSION,
        "dim": CREATIVE_DIM,
        "threshold": THRESHOLD,
        "ads": len(files),
        "points": len(items),
        "queries": len(items) - len(files),
        "neighbours": NEIGHBOURS,
        "at_threshold": shipped,
        "sweep": sweep,
        "false_links": false_links,
        "seconds": {"hash_all": round(hash_s, 1), "total": round(total_s, 1)},
        "query_ms_mean": round(sum(query_ms) / len(query_ms), 3),
    }
    lines = [
        "# Duplicate search: the creative fingerprint on generated ads377 variants",
        "",
        f"{len(files)} ads377 originals + 2 generated variants each ({len(items)} points; kinds in turn: "
        f"{', '.join(KINDS)}), fingerprint `{VERSION}` ({CREATIVE_DIM}-d), stored in Qdrant Edge; each of the "
        f"{data['queries']} variants queries the `creative` channel (top {NEIGHBOURS}) through `EdgeStore.search`. "
        "Precision = same-creative share of the hits at or above the threshold; recall = share of the "
        "same creative's other copies (original + sibling variant) among them. Micro-averaged. "
        "`python -m bench.duplicates`.",
        "",
        f"## At the shipped threshold, cosine >= {THRESHOLD}",
        "",
        "| variant kind | precision | recall | hits returned | copies to find |",
        "|---|---|---|---|---|",
    ]
    for kind in ("overall", *KINDS):
        r = shipped[kind]
        lines.append(
            f"| {kind} | {r['precision']:.3f} | {r['recall']:.3f} | {r['returned']} | {r['relevant']} |"
        )
    lines += [
        "",
        "## Threshold sweep (overall; the crop column is the weakest kind)",
        "",
        "| threshold | precision | recall | crop recall | sticker recall |",
        "|---|---|---|---|---|",
    ]
    for t in SWEEP:
        s = sweep[str(t)]
        mark = " (shipped)" if t == THRESHOLD else ""
        lines.append(
            f"| {t:.2f}{mark} | {s['overall']['precision']:.3f} | {s['overall']['recall']:.3f} | "
            f"{s['crop']['recall']:.3f} | {s['sticker']['recall']:.3f} |"
        )
    lines += [
        "",
        f"Hits at the threshold that belong to another ad: {len(false_links)}"
        + (f" (e.g. {', '.join(f'{q} -> {o} at {s}' for q, o, s in false_links[:5])})" if false_links else "")
        + ".",
        "",
        f"Time: fingerprinting all {len(items)} images {hash_s:.0f} s (decode + downscale dominate), "
        f"one creative-channel query {data['query_ms_mean']:.2f} ms mean, whole run {total_s:.0f} s, "
        "on a shared machine (other jobs were running: times are indicative only).",
    ]
    write_results("duplicates", data, "\n".join(lines))


if __name__ == "__main__":
    main()
