"""Download subfolders of the public Pitt image-ads dataset (Hussain et al., CVPR 2017) for users
with internet access. 64,832 ads in 11 zip files (`subfolder-0.zip` ... `subfolder-10.zip`).

    python -m dataset.pitt --subfolders 0 1 --out pitt-ads
    adsearch ingest pitt-ads

The dataset page is people.cs.pitt.edu/~kovashka/ads; if the files move, pass --base-url.
The download URL could not be checked from the build machines (they have no internet access).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path

DEFAULT_BASE_URL = "https://people.cs.pitt.edu/~kovashka/ads/"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subfolders", type=int, nargs="+", default=[0], help="which of 0..10 (default 0)")
    parser.add_argument("--out", type=Path, default=Path("pitt-ads"))
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL)
    parser.add_argument("--keep-zips", action="store_true")
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
    print(f"unpacked {', '.join(map(str, folders))}; now: adsearch ingest {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
