"""How deep each channel is ranked before fusion (the prefetch depth, `ADSEARCH_PREFETCH_LIMIT`) and
quality on the 377 real ads: fixed and adaptive hybrid at depths 20 / 30 / 50 / 100 on bench/fusion.py's
four query sets (text channels, bench/quality.py's collection). bench/scale.py measures what depth
costs and finds at 1,000,000 points; this says whether a shallower depth changes the answers.

    .venv/bin/python -m bench.prefetch
"""

from __future__ import annotations

from bench.common import ADS377, WORK, write_results
from bench.fusion import load_sets, mean, per_query
from engine.library import Library
from engine.quality.evaluate import image_keys
from engine.settings import Settings

DEPTHS = (20, 30, 50, 100)
FUSIONS = ("fixed", "adaptive")


def main() -> None:
    base = Settings(db=WORK / "quality-db", clip_model=str(WORK / "no-clip-weights"))
    sets = load_sets()
    figures: dict[str, dict[str, dict[str, float]]] = {}
    with Library(base) as library:
        keys, _ = image_keys(library, ADS377 / "images")
        for depth in DEPTHS:
            deep = Library(
                base.with_overrides(prefetch_limit=depth), store=library.store, encoders=library.encoders
            )
            for fusion in FUSIONS:
                runs = per_query(deep, keys, sets, fusion=fusion)
                figures.setdefault(fusion, {})[str(depth)] = {n: mean(v) for n, v in runs.items()}
                print(f"  depth {depth} {fusion}: {figures[fusion][str(depth)]}", flush=True)
    data = {"depths": list(DEPTHS), "sets": {n: m for n, (_, _, m) in sets.items()},
            "sizes": {n: len(q) for n, (q, _, _) in sets.items()}, "figures": figures}  # fmt: skip
    write_results("prefetch", data, report(data))


def report(data: dict) -> str:
    names = list(data["sets"])
    md = ["# Prefetch depth and quality on the 377 real ads", "", __doc__.split("\n\n")[0].replace("\n", " "), "",
          "| fusion | depth | " + " | ".join(f"{n} ({data['sets'][n]}, {data['sizes'][n]} q)" for n in names) + " |",
          "|---|---|" + "---|" * len(names)]  # fmt: skip
    for fusion, by_depth in data["figures"].items():
        for depth, values in by_depth.items():
            md.append(f"| {fusion} | {depth} | " + " | ".join(str(values[n]) for n in names) + " |")
    return "\n".join(md)


if __name__ == "__main__":
    main()
