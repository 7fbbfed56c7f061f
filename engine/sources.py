"""Where images come from: local paths, or URLs read through fsspec (`s3://bucket/prefix`,
`gs://...`, `https://host/list.txt`, `file:///...`, `memory://...`).

A URL to a folder (prefix) is searched recursively for image files; a URL to a `.txt` or `.lst` file
is a list of image URLs, one per line; a URL to an image is that image. A URL's image is stored
under its URL, and read again through the same filesystem when the web UI shows it. Remote
filesystems need their fsspec package: `s3fs` (s3://), `gcsfs` (gs://), `aiohttp` (http(s)://),
installed with the project's extras `adsearch[s3]`, `[gcs]`, `[http]`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from engine.errors import UsageError
from engine.images import IMAGE_SUFFIXES, discover

LIST_SUFFIXES = {".txt", ".lst"}
MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created")


@dataclass(frozen=True)
class Source:
    """A discovered image: where to read it (local path or URL), its path relative to the source
    given (POSIX) and the folder there."""

    location: str | Path
    relative: str
    folder: str


def is_url(location: str | Path) -> bool:
    return isinstance(location, str) and "://" in location


def stored_path(location: str | Path) -> str:
    """What a point's `paths` lists: the URL as given, or the absolute local path."""
    return location if is_url(location) else str(Path(location).resolve())


def discover_sources(roots: list[str | Path]) -> Iterator[Source]:
    """Every image under each root, each file once (the first root that holds it)."""
    seen: set[str] = set()
    for root in roots:
        found = _under_url(str(root)) if is_url(root) else _under_path(Path(root))
        for source in found:
            key = source.location if is_url(source.location) else os.path.realpath(source.location)
            if key not in seen:
                seen.add(key)
                yield source


def _under_path(root: Path) -> Iterator[Source]:
    for path in discover([root]):
        if path == root:
            yield Source(path, path.name, ".")
        else:
            relative = path.relative_to(root)
            yield Source(path, relative.as_posix(), relative.parent.as_posix())


def _filesystem(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # an unknown protocol, or its package not installed
        raise UsageError(f"cannot read {url}: {exc}") from None


def _under_url(url: str) -> Iterator[Source]:
    fs, root = _filesystem(url)
    try:
        is_file = fs.isfile(root)
        if is_file and PurePosixPath(root).suffix.lower() in LIST_SUFFIXES:
            lines = fs.cat_file(root).decode("utf-8", errors="replace").splitlines()
            for line in (line.strip() for line in lines):
                if line and not line.startswith("#"):
                    yield Source(line, PurePosixPath(line.split("://", 1)[-1]).name, ".")
            return
        if is_file:
            yield Source(url, PurePosixPath(root).name, ".")
            return
        paths = sorted(fs.find(root))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot list {url}: {exc}") from None
    base = root.rstrip("/")
    for path in paths:
        if PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES:
            relative = PurePosixPath(path[len(base) :].lstrip("/"))
            yield Source(fs.unstrip_protocol(path), relative.as_posix(), relative.parent.as_posix())


def read_bytes(location: str | Path) -> bytes:
    """The bytes of a local file or URL; OSError with the reason when they cannot be read."""
    if not is_url(location):
        return Path(location).read_bytes()
    fs, path = _filesystem(str(location))
    try:
        return fs.cat_file(path)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 (a remote filesystem's own errors: credentials, HTTP, ...)
        raise OSError(f"{type(exc).__name__}: {exc}") from None


def modified(location: str | Path) -> float | None:
    """Modification time (POSIX seconds) when the filesystem says; None otherwise."""
    if not is_url(location):
        return Path(location).stat().st_mtime
    fs, path = _filesystem(str(location))
    try:
        info = fs.info(path)
    except Exception:  # noqa: BLE001 (not knowing the date is not an error)
        return None
    for key in MTIME_KEYS:
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None
