"""The Pitt annotations of ads377 as a metadata file for `adsearch ingest --metadata`.

    python -m dataset.ads377_metadata --out ads377-metadata.jsonl
    adsearch ingest ../shared/data/ads377/images --metadata ads377-metadata.jsonl

ads377 (../shared/data/ads377 beside this repository; see its README) holds 377 Pitt ads and
`annotations.json` with the annotators' raw topic and sentiment votes. Each row gives one image the
same fields as `python -m dataset.pitt` writes for downloaded ads: topic, topic_agreement, sentiment,
sentiment_agreement (see dataset/pitt.py); its path is the Pitt key (`0/1060.jpg`), relative to
ads377/images. The labels are the dataset's: write the file outside this repository (benchmarks do),
never commit it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path, PurePosixPath

from dataset.pitt import annotation_fields, write_rows

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ads377"


def rows(data: Path = DEFAULT_DATA) -> list[dict]:
    """One metadata row per annotated image of ads377, in key order."""
    annotations = json.loads((data / "annotations.json").read_text())
    meta = annotations["_meta"]
    topics = {i: label["abbreviation"] for i, label in meta["topic_list"].items()}
    sentiments = {i: label["abbreviation"] for i, label in meta["sentiment_list"].items()}
    out = []
    for key, image in sorted(annotations["images"].items()):
        path = PurePosixPath(image.get("path") or f"images/{key}")
        fields = annotation_fields(
            (image.get("topics") or {}).get("raw_annotations"),
            (image.get("sentiments") or {}).get("raw_annotations"),
            topics,
            sentiments,
        )
        if fields:
            out.append({"path": str(path.relative_to("images")), **fields})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON Lines file to write")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"ads377 folder (default {DEFAULT_DATA})"
    )
    args = parser.parse_args(argv)
    try:
        found = rows(args.data)
    except (OSError, ValueError, KeyError) as exc:
        print(f"ads377_metadata: cannot read {args.data / 'annotations.json'}: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    written = write_rows(found, args.out)
    print(f"wrote {written} rows to {args.out}")
    print(f"now: adsearch ingest {args.data / 'images'} --metadata {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
