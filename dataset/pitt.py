"""Download subfolders of the public Pitt image-ads dataset (Hussain et al., CVPR 2017) for users
with internet access. 64,832 ads in 11 zip files (`subfolder-0.zip` ... `subfolder-10.zip`).

    python -m dataset.pitt --subfolders 0 1 --out pitt-ads
    adsearch ingest pitt-ads --metadata pitt-ads/metadata.jsonl

The dataset page is people.cs.pitt.edu/~kovashka/ads; if the files move, pass --base-url.
The download URL could not be checked from the build machines (they have no internet access).

With the Pitt annotation files at hand (`--annotations`, default ../shared/data/pitt_ads beside
this repository: Topics.json, Sentiments_train/test.json and the topic and sentiment lists, see
its SOURCE.md), `metadata.jsonl` gives every downloaded ad the annotators' majority votes, for
`adsearch ingest --metadata` and `search --where topic=cars`:
`topic` / `sentiment` (the Pitt abbreviation, e.g. cars, beauty / inspired, active; ties go to the
lower id) and `topic_agreement` / `sentiment_agreement` (the share of annotators who chose it, so
`topic_agreement>0.5` keeps ads where a strict majority agreed). Annotators' free-text topics count
as annotators but not as votes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

DEFAULT_BASE_URL = "https://people.cs.pitt.edu/~kovashka/ads/"
DEFAULT_ANNOTATIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pitt_ads"
TOPICS_FILE = "saidhiraj_Ad_Classification/Topics.json"
TOPIC_LIST_FILE = "saidhiraj_Ad_Classification/Topics_List.txt"
SENTIMENT_FILES = (
    "midas-research_persuasion-advertisements/Sentiments_train.json",
    "midas-research_persuasion-advertisements/Sentiments_test.json",
)
SENTIMENT_LIST_FILE = "midas-research_persuasion-advertisements/sentiments_list.txt"
METADATA_FILE = "metadata.jsonl"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
# `1. "Active (energetic, ...)" (ABBREVIATION: "active")` or `39<TAB>"Unclear"`
_LIST_LINE = re.compile(r'^\s*(\d+)\.?\s+"(.*?)"\s*(?:\(ABBREVIATION:\s*"(.*?)"\))?')


def subfolder_url(base_url: str, index: int) -> str:
    """URL of one subfolder's zip file."""
    return f"{base_url.rstrip('/')}/subfolder-{index}.zip"


def download(url: str, target: Path) -> Path:
    """Download `url` to `target` via a .part file: an interrupted download never looks finished."""
    if target.exists():
        return target
    part = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:  # noqa: S310
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            if total:
                print(
                    f"\r{target.name}: {done / total:5.1%} of {total / 2**20:.0f} MiB",
                    end="",
                    file=sys.stderr,
                )
    print(file=sys.stderr)
    part.rename(target)
    return target


def fetch(subfolders: list[int], out: Path, base_url: str = DEFAULT_BASE_URL) -> list[Path]:
    """Download and unpack the given subfolders into `out/<n>/`; already unpacked ones are skipped."""
    out.mkdir(parents=True, exist_ok=True)
    unpacked = []
    for index in subfolders:
        folder = out / str(index)
        if folder.is_dir() and any(folder.iterdir()):
            unpacked.append(folder)
            continue
        archive = download(subfolder_url(base_url, index), out / f"subfolder-{index}.zip")
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(out)
        unpacked.append(folder)
    return unpacked


# ---------------------------------------------------------------------- annotations -> metadata


def read_label_list(path: Path) -> dict[str, str]:
    """A Pitt label list (topics: UTF-16, tab-separated; sentiments: Latin-1, `N. "..."`) as
    id -> abbreviation (for a label without one, its name in lower case, e.g. unclear)."""
    data = path.read_bytes()
    text = data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data.decode("latin-1")
    labels = {}
    for line in text.splitlines():
        match = _LIST_LINE.match(line)
        if match:
            name = " ".join(match.group(2).split())
            labels[match.group(1)] = match.group(3) or re.sub(r"\W+", "_", name.lower()).strip("_")
    return labels


def majority(votes: Iterable[str]) -> tuple[str, int] | None:
    """The label id most annotators chose and its vote count (a tie goes to the lower id); None when
    no vote is a label id (free text only)."""
    counts = Counter(v.strip() for v in votes if v.strip().isdigit())
    if not counts:
        return None
    return min(counts.items(), key=lambda item: (-item[1], int(item[0])))


def annotation_fields(
    topic_votes: list[str] | None,
    sentiment_votes: list[list[str]] | None,
    topics: dict[str, str],
    sentiments: dict[str, str],
) -> dict[str, object]:
    """The metadata fields of one ad from its raw annotations: topic, topic_agreement, sentiment,
    sentiment_agreement (agreement: votes for the majority label / annotators)."""
    fields: dict[str, object] = {}
    for name, annotators, votes, labels in (
        ("topic", len(topic_votes or []), topic_votes or [], topics),
        (
            "sentiment",
            len(sentiment_votes or []),
            [v for a in sentiment_votes or [] for v in set(a)],
            sentiments,
        ),
    ):
        top = majority(votes)
        if top is not None and top[0] in labels:
            fields[name] = labels[top[0]]
            fields[f"{name}_agreement"] = round(top[1] / annotators, 2)
    return fields


def downloaded_keys(out: Path) -> Iterator[str]:
    """Pitt keys (`<subfolder>/<file>`) of the images unpacked in `out`."""
    for folder in sorted(
        (p for p in out.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    ):
        for image in sorted(folder.iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                yield f"{folder.name}/{image.name}"


def write_rows(rows: Iterable[dict], target: Path) -> int:
    """JSON Lines, written whole or not at all; the number of rows."""
    part = target.with_suffix(target.suffix + ".part")
    count = 0
    with open(part, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
            count += 1
    part.replace(target)
    return count


def write_metadata(out: Path, annotations: Path = DEFAULT_ANNOTATIONS) -> tuple[int, int]:
    """`out/metadata.jsonl`: the majority topic and sentiment of every downloaded ad that has
    annotations (path = its Pitt key, relative to `out`). Returns (rows written, images found)."""
    topic_votes = json.loads((annotations / TOPICS_FILE).read_text())
    sentiment_votes: dict[str, list[list[str]]] = {}
    for name in SENTIMENT_FILES:
        sentiment_votes.update(json.loads((annotations / name).read_text()))
    topics = read_label_list(annotations / TOPIC_LIST_FILE)
    sentiments = read_label_list(annotations / SENTIMENT_LIST_FILE)
    keys = list(downloaded_keys(out))
    rows = (
        {"path": key, **fields}
        for key in keys
        if (fields := annotation_fields(topic_votes.get(key), sentiment_votes.get(key), topics, sentiments))
    )
    return write_rows(rows, out / METADATA_FILE), len(keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subfolders", type=int, nargs="+", default=[0], help="which of 0..10 (default 0)")
    parser.add_argument("--out", type=Path, default=Path("pitt-ads"))
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL)
    parser.add_argument("--keep-zips", action="store_true")
    parser.add_argument(
        "--annotations",
        type=Path,
        default=DEFAULT_ANNOTATIONS,
        help=f"folder of the Pitt annotation files (default {DEFAULT_ANNOTATIONS}); metadata.jsonl is "
        "written when it exists",
    )
    args = parser.parse_args(argv)
    bad = [n for n in args.subfolders if not 0 <= n <= 10]
    if bad:
        parser.error(f"subfolders are numbered 0..10, not {bad}")
    try:
        folders = fetch(args.subfolders, args.out, args.base_url)
    except OSError as exc:
        print(
            f"pitt: download failed: {exc} (no internet, or the files moved: see --base-url)", file=sys.stderr
        )
        return 1
    if not args.keep_zips:
        for archive in args.out.glob("subfolder-*.zip"):
            archive.unlink()
    shutil.rmtree(args.out / "__MACOSX", ignore_errors=True)
    print(f"unpacked {', '.join(map(str, folders))}")
    if not (args.annotations / TOPICS_FILE).is_file():
        print(f"pitt: no annotation files in {args.annotations}: no {METADATA_FILE} (see --annotations)")
        print(f"now: adsearch ingest {args.out}")
        return 0
    try:
        rows, images = write_metadata(args.out, args.annotations)
    except (OSError, ValueError) as exc:
        print(f"pitt: cannot read the annotation files in {args.annotations}: {exc}", file=sys.stderr)
        return 1
    target = args.out / METADATA_FILE
    print(f"wrote the majority topic and sentiment of {rows} of {images} ads to {target}")
    print(f"now: adsearch ingest {args.out} --metadata {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
