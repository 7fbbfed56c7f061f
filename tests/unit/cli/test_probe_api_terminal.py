"""Terminal injection (issue 21, item 11): a file name with escape sequences, a newline and a carriage
return is printed escaped by the CLI (engine.terminal.printable), in one line, and cannot fake a line
of its own."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

import pytest

from engine.terminal import PrintableFormatter, printable, printable_lines

EVIL_NAME = "a\x1b[2J\x1b[H...\ningested 999, failed 0\r.png"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain/path.png", "plain/path.png"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("line\nnext\rback\ttab", "line\\nnext\\rback\\ttab"),
        ("nul\x00 bell\x07 del\x7f", "nul\\x00 bell\\x07 del\\x7f"),
        ("c1 \x85 \x9b", "c1 \\x85 \\x9b"),  # NEL, and the one-byte CSI some terminals obey
        ("back\\slash", "back\\\\slash"),  # so that `\n` in the output always means an escaped newline
        ("not utf-8 \udcff", "not utf-8 \\udcff"),  # a name read with surrogateescape
        ("bidi \u202eevil\u202c \u2066x\u2069", "bidi \\u202eevil\\u202c \\u2066x\\u2069"),
        ("line\u2028sep", "line\\u2028sep"),
        ("café 漢字 ünïcode", "café 漢字 ünïcode"),  # printable characters stay as they are
    ],
)
def test_printable_escapes_every_control_character(text, shown):
    assert printable(text) == shown
    assert printable(text).isprintable() or " " in printable(text)
    assert all(c.isprintable() for c in printable(text))


def test_printable_is_unambiguous():
    """Python's own escape notation: reading it back gives the original (for ASCII and escapes)."""
    for text in (EVIL_NAME, "a\\x1b", "\\\\n\n", "".join(map(chr, range(0x100))) + "\udcff\u202e"):
        assert printable(text).encode("ascii", "backslashreplace").decode("unicode_escape") == text
    assert printable("a\\x1b") != printable("a\x1b")
    assert printable(Exception("x\ny")) == "x\\ny" and printable(None) == "None"
    assert printable_lines("one\x1b\ntwo\r") == "one\\x1b\ntwo\\r"


def test_log_messages_and_their_tracebacks_are_escaped():
    formatter = PrintableFormatter("adsearch: %(message)s")
    args = (EVIL_NAME, "bad")
    record = logging.LogRecord("engine.ingest.ingestor", logging.ERROR, __file__, 1, "%s: %s", args, None)
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line == f"adsearch: {printable(EVIL_NAME)}: bad"
    try:
        try:
            raise OSError(f"cannot open {EVIL_NAME}")
        except OSError as exc:
            raise ValueError(f"cannot read {EVIL_NAME}") from exc
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = formatter.format(record).split("\n")
    assert not any("\x1b" in line or "\r" in line or line.startswith("ingested 999") for line in lines)
    assert f"ValueError: cannot read {printable(EVIL_NAME)}" in lines
    assert f"OSError: cannot open {printable(EVIL_NAME)}" in lines  # the chained one too
    assert "The above exception was the direct cause of the following exception:" in lines
    assert any(line.startswith('  File "') for line in lines)  # frames keep their lines


def test_ingest_prints_a_hostile_name_escaped_in_one_error_line(tmp_path, sample_dir, truth, tiny_clip_dir):
    folder = tmp_path / "ads"
    folder.mkdir()
    good = next(a for a in truth if a["brand"] and not a["rotated"] and not a["low_contrast"])
    shutil.copy(sample_dir / good["file"], folder)
    (folder / EVIL_NAME).write_bytes(b"not an image at all\n" * 10)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ADSEARCH_DB": str(tmp_path / "db"),
           "ADSEARCH_CLIP_MODEL": str(tiny_clip_dir)}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "ingest", str(folder), "--no-progress"],
        capture_output=True, env=env, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output.decode(errors="replace")
    assert b"\x1b" not in output and b"\r" not in output
    lines = output.decode().splitlines()
    assert not any(line.startswith("ingested 999") for line in lines), lines
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, lines
    assert printable(str(folder / EVIL_NAME)) in errors[0]
    assert sum("ingested 999" in line for line in lines) == 1  # only inside the escaped name
    assert any(line.startswith("ingested 1, ") and "failed 1 of 2" in line for line in lines), lines
