"""Where images come from, read as untrusted input: local folders, or URLs (`s3://bucket/prefix`,
`gs://...`, `https://host/list.txt`, `file:///...`) read through fsspec.

A URL to a folder (prefix) is searched recursively for image files; a URL to a `.txt` or `.lst` file
is a list of image URLs, one per line; a URL to an image is that image. A URL's image is stored
under its URL. Remote filesystems need their fsspec package: `s3fs` (s3://), `gcsfs` (gs://),
`aiohttp` (http(s):// folders), installed with the project's extras `adsearch[s3]`, `[gcs]`, `[http]`.

What is enforced here (docs/threat-model.md):
- only regular files are read: a FIFO, device or socket is refused before a byte is read, and a
  file over `max_bytes` before it is read whole;
- under an ingested folder, a link (file or folder) whose target lies outside that folder is one
  error, never followed;
- URLs only of the schemes the user allows (`ADSEARCH_URL_SCHEMES`), each read within a byte cap
  and a timeout; http(s) redirects are never followed; a list file on a remote host may name only
  remote URLs, never a local path or `file://`;
- names that are not valid UTF-8 are stored in an escaped, reversible form (`portable_name`).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path, PurePosixPath

from engine.errors import UsageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
LIST_SUFFIXES = {".txt", ".lst"}
MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created")
DEFAULT_URL_SCHEMES = ("file", "s3", "gs", "http", "https")
LOCAL_SCHEMES = frozenset({"file", "local"})
HTTP_SCHEMES = frozenset({"http", "https"})
DEFAULT_MAX_FILE_BYTES = 100 * 2**20
DEFAULT_URL_TIMEOUT = 30.0
READ_CHUNK = 1 << 20
_FILE_KINDS = [
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
]


@dataclass(frozen=True)
class SourcePolicy:
    """What reading a source may do: URL schemes allowed, bytes per file, seconds per URL fetch."""

    schemes: tuple[str, ...] = DEFAULT_URL_SCHEMES
    max_bytes: int = DEFAULT_MAX_FILE_BYTES
    timeout: float = DEFAULT_URL_TIMEOUT

    @classmethod
    def of(cls, settings) -> SourcePolicy:
        """The policy a Settings object asks for."""
        return cls(tuple(settings.url_schemes), settings.max_file_bytes, settings.url_timeout)

    def capped(self, max_bytes: int) -> SourcePolicy:
        return SourcePolicy(self.schemes, min(self.max_bytes, max_bytes), self.timeout)

    def check(self, url: str) -> str:
        """The URL's scheme, or UsageError when the user has not allowed it."""
        scheme = scheme_of(url)
        if scheme not in self.schemes:
            raise UsageError(
                f"{url}: URL scheme '{scheme}' is not allowed (allowed: {', '.join(self.schemes)}; "
                "set ADSEARCH_URL_SCHEMES to change)"
            )
        return scheme


DEFAULT_POLICY = SourcePolicy()


@dataclass(frozen=True)
class Source:
    """A discovered image: where to read it (local path or URL), its path relative to the source
    given (POSIX) and the folder there; `error` when it must not be read (said in one line)."""

    location: str | Path
    relative: str
    folder: str
    error: str | None = None


def is_url(location: str | Path) -> bool:
    return isinstance(location, str) and "://" in location


def is_remote(location: str | Path) -> bool:
    """A URL whose bytes come from another host (not `file://`)."""
    return is_url(location) and scheme_of(str(location)) not in LOCAL_SCHEMES


def scheme_of(url: str) -> str:
    """'S3://b/k' -> 's3'; a chained fsspec URL ('simplecache::s3://...') keeps its whole prefix."""
    return url.split("://", 1)[0].lower()


# ---------------------------------------------------------------------- names that are not UTF-8

_ESCAPED = re.compile(r"\\x(5c|[89a-f][0-9a-f])")


def portable_name(text: str) -> str:
    """A path as stored and printed: itself when it is valid UTF-8; otherwise each byte that is not
    (a surrogate from os.fsdecode) as `\\xNN` and each backslash as `\\x5c`, so it stays reversible."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return "".join(f"\\x{ord(ch) - 0xDC00:02x}" if "\udc80" <= ch <= "\udcff" else
                   "\\x5c" if ch == "\\" else ch for ch in text)  # fmt: skip


def local_names(stored: str) -> list[str]:
    """The file-system names a stored local path may stand for: itself, and its unescaped form."""
    unescaped = _ESCAPED.sub(lambda m: "\\" if m[1] == "5c" else chr(0xDC00 + int(m[1], 16)), stored)
    return [stored] if unescaped == stored else [stored, unescaped]


def stored_path(location: str | Path) -> str:
    """What a point's `paths` lists: the URL as given, or the absolute local path; portable_name."""
    return portable_name(location if is_url(location) else str(Path(location).resolve()))


def display(location: str | Path) -> str:
    """A location as printed in error lines (portable_name; the CLI also escapes control characters)."""
    return portable_name(str(location))


# ---------------------------------------------------------------------- discovery


def discover_sources(roots: list[str | Path], policy: SourcePolicy = DEFAULT_POLICY) -> Iterator[Source]:
    """Every image under each root, each file once (the first root that holds it)."""
    seen: set[str] = set()
    for root in roots:
        found = _under_url(str(root), policy) if is_url(root) else _under_path(Path(root))
        for source in found:
            key = source.location if is_url(source.location) else os.path.realpath(source.location)
            if key not in seen:
                seen.add(key)
                yield source


def _under_path(root: Path) -> Iterator[Source]:
    """A file given directly is read as it is; under a folder, every image file, recursively, links
    followed only while they stay inside it (a link loop is entered once)."""
    if not root.is_dir():
        yield Source(root, portable_name(root.name), ".")
        return
    yield from _walk(root, Path(os.path.realpath(root)), root, set())


def _inside(real: str, tree: Path) -> bool:
    return real == str(tree) or real.startswith(str(tree).rstrip(os.sep) + os.sep)


def _walk(folder: Path, tree: Path, root: Path, seen: set[str]) -> Iterator[Source]:
    real = os.path.realpath(folder)
    if real in seen:
        return
    seen.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        relative, where = (
            portable_name(p.as_posix()) for p in (path.relative_to(root), path.parent.relative_to(root))
        )
        if entry.is_symlink() and not _inside(os.path.realpath(path), tree):
            if entry.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
                target = portable_name(os.path.realpath(path))
                reason = f"a link to {target}, outside the ingested folder: not followed"
                yield Source(path, relative, where, reason)
            continue
        try:
            is_dir = entry.is_dir()  # follows links (inside the tree); a dangling link is not a folder
        except OSError:
            is_dir = False
        if is_dir:
            yield from _walk(path, tree, root, seen)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            yield Source(path, relative, where)


def _filesystem(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # an unknown protocol, or its package not installed
        raise UsageError(f"cannot read {url}: {exc}") from None


def _under_url(url: str, policy: SourcePolicy) -> Iterator[Source]:
    scheme = policy.check(url)
    suffix = PurePosixPath(url.split("://", 1)[1].split("?", 1)[0]).suffix.lower()
    if suffix in LIST_SUFFIXES:
        yield from _listed(url, policy)
        return
    if suffix in IMAGE_SUFFIXES:
        yield Source(url, PurePosixPath(url.split("://", 1)[1]).name, ".")
        return
    if scheme in LOCAL_SCHEMES:  # walked like a local folder: links checked, special files refused
        for source in _under_path(Path(url.split("://", 1)[1])):
            yield replace(source, location=f"file://{source.location}")
        return
    fs, root = _filesystem(url)
    try:
        paths = sorted(fs.find(root))
    except Exception as exc:  # noqa: BLE001 (a remote filesystem's own errors: credentials, HTTP, ...)
        raise UsageError(f"cannot list {url}: {exc}") from None
    base = root.rstrip("/")
    for path in paths:
        if PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES:
            relative = PurePosixPath(path[len(base) :].lstrip("/"))
            yield Source(fs.unstrip_protocol(path), relative.as_posix(), relative.parent.as_posix())


def _listed(url: str, policy: SourcePolicy) -> Iterator[Source]:
    """The images a list file names; a line a remote list may not name is an error Source."""
    try:
        text = read_bytes(url, policy).decode("utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read the list {url}: {exc.strerror or exc}") from None
    remote_list = scheme_of(url) not in LOCAL_SCHEMES
    for line in (line.strip() for line in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        name = PurePosixPath(line.split("://", 1)[-1]).name
        yield Source(line, name, ".", _list_line_error(line, remote_list, policy))


def _list_line_error(line: str, remote_list: bool, policy: SourcePolicy) -> str | None:
    local = not is_url(line) or scheme_of(line) in LOCAL_SCHEMES
    if remote_list and local:
        return "a list file on a remote host may not name a local file"
    if is_url(line):
        try:
            policy.check(line)
        except UsageError as exc:
            return str(exc)
    return None


# ---------------------------------------------------------------------- kept copies


def kept_original(db: str | Path, image_id: str) -> Path:
    """Where ingest keeps the bytes of an image read from a remote URL, so that showing it never
    makes the server fetch anything: `<db>/originals/<id>`."""
    return Path(db) / "originals" / image_id


def write_atomically(target: Path, data: bytes) -> None:
    """Write through a temporary file of this call's own, renamed over `target` (concurrent writers
    of the same file each rename a whole file; a reader never sees a part)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------- reading


def read_bytes(
    location: str | Path, policy: SourcePolicy = DEFAULT_POLICY, follow_links: bool = True
) -> bytes:
    """The bytes of a local file or URL within `policy`; OSError with the reason when they cannot or
    must not be read (not a regular file, too large, a scheme not allowed, a redirect, a time-out).
    `follow_links=False` refuses a local path whose last component is a symbolic link."""
    if not is_url(location):
        return _read_local(str(location), policy.max_bytes, follow_links)
    url = str(location)
    try:
        scheme = policy.check(url)
    except UsageError as exc:
        raise OSError(errno.EPERM, str(exc)) from None
    if scheme in LOCAL_SCHEMES:
        return _read_local(url.split("://", 1)[1], policy.max_bytes, follow_links)
    if scheme in HTTP_SCHEMES:
        return _read_http(url, policy)
    return _read_fsspec(url, policy)


def _too_large(size: int, limit: int) -> OSError:
    reason = f"larger than the {limit:,} byte limit ({size:,} bytes; ADSEARCH_MAX_FILE_BYTES)"
    return OSError(errno.EFBIG, reason)


def _read_local(path: str, limit: int, follow_links: bool) -> bytes:
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_links:
            raise OSError(errno.ELOOP, "a symbolic link where a file was ingested: not followed") from None
        raise
    with os.fdopen(fd, "rb", buffering=0) as file:
        info = os.fstat(fd)
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), None)
        if kind or not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"{kind or 'a special file'}, not a regular file: not read")
        if info.st_size > limit:
            raise _too_large(info.st_size, limit)
        os.set_blocking(fd, True)
        return _read_capped(file.read, limit)


def _read_capped(read, limit: int) -> bytes:
    data = bytearray()
    while chunk := read(min(READ_CHUNK, limit + 1 - len(data))):
        data += chunk
        if len(data) > limit:
            raise _too_large(len(data), limit)
    return bytes(data)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        reason = f"redirected to {newurl}: redirects are not followed"
        raise urllib.error.HTTPError(req.full_url, code, reason, headers, fp)


_HTTP = urllib.request.build_opener(_NoRedirects)


def _read_http(url: str, policy: SourcePolicy) -> bytes:
    """One GET with a timeout, no redirects, at most `policy.max_bytes` (a stated larger length is
    refused before the body is read)."""
    request = urllib.request.Request(url, headers={"User-Agent": "adsearch"})
    try:
        with _HTTP.open(request, timeout=policy.timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > policy.max_bytes:
                raise _too_large(int(length), policy.max_bytes)
            return _read_capped(response.read, policy.max_bytes)
    except urllib.error.HTTPError as exc:
        raise OSError(errno.EIO, f"HTTP {exc.code}: {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise OSError(errno.EIO, f"cannot fetch: {exc.reason}") from None
    except TimeoutError:
        raise OSError(errno.ETIMEDOUT, f"no answer within {policy.timeout:g} s") from None


def _read_fsspec(url: str, policy: SourcePolicy) -> bytes:
    fs, path = _filesystem(url)
    try:
        size = fs.size(path)
        if size is not None and size > policy.max_bytes:
            raise _too_large(size, policy.max_bytes)
        with fs.open(path, "rb") as file:
            return _read_capped(file.read, policy.max_bytes)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 (a remote filesystem's own errors: credentials, HTTP, ...)
        raise OSError(errno.EIO, f"{type(exc).__name__}: {exc}") from None


def modified(location: str | Path) -> float | None:
    """Modification time (POSIX seconds) when the filesystem says; None otherwise."""
    if not is_url(location):
        return Path(location).stat().st_mtime
    if scheme_of(str(location)) in HTTP_SCHEMES:
        return None  # a second request per image only for a date the server may not keep
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
