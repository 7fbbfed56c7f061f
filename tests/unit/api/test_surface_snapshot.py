"""Issue 22: nothing a user sees changes. The OpenAPI schema and every CLI command's flags are compared
with snapshots committed in tests/snapshots/, taken before the restructuring of engine/.

A deliberate change: regenerate with
    ADSEARCH_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/unit/api/test_surface_snapshot.py
(the tests then rewrite the files and skip), review `git diff tests/snapshots`, commit.

Both surfaces are taken as a default-configured install sees them: ADSEARCH_* variables are removed
while they are built, and no path, core count or other fact of the machine may end up in a snapshot.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import tempfile
from pathlib import Path, PurePath

import pytest

SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots"
OPENAPI = SNAPSHOTS / "openapi.json"
CLI = SNAPSHOTS / "cli.json"
UPDATE_VARIABLE = "ADSEARCH_UPDATE_SNAPSHOTS"
REGENERATE = f"{UPDATE_VARIABLE}=1 .venv/bin/python -m pytest tests/unit/api/test_surface_snapshot.py"
DIFF_LINES = 60
# read once at import: the tests remove every ADSEARCH_* variable while they build the surfaces
UPDATE = os.environ.get(UPDATE_VARIABLE) == "1"


def dump(data) -> str:
    """The one serialisation of a snapshot: stable key order, one item a line, so diffs read well."""
    return json.dumps(data, sort_keys=True, indent=1) + "\n"


def without_adsearch_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ADSEARCH_"):
            monkeypatch.delenv(name)


# ---------------------------------------------------------------------------- the two surfaces


def openapi_schema(db: Path) -> dict:
    """The app's OpenAPI schema, over an empty store (the schema depends on neither data nor paths)."""
    from api import create_app
    from api.settings import ServeSettings

    app = create_app(settings=ServeSettings(db=db))
    try:
        return app.openapi()
    finally:
        app.state.library.close()


def _json_value(value):
    """A default or choice as JSON: as it is when JSON has it, a platform-free form for paths, else repr."""
    if isinstance(value, PurePath):
        return f"Path({value.as_posix()!r})"
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _action_kind(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The name the action was registered under ("store", "store_true", "append", "parsers", ...)."""
    names = {cls: name for name, cls in parser._registries["action"].items() if name is not None}
    return names.get(type(action), type(action).__name__)


def _action(parser: argparse.ArgumentParser, action: argparse.Action) -> dict:
    subcommands = isinstance(action, argparse._SubParsersAction)
    choices = list(action.choices) if subcommands else action.choices
    return {
        "option_strings": list(action.option_strings),
        "positional": not action.option_strings,
        "dest": action.dest,
        "action": _action_kind(parser, action),
        "nargs": action.nargs,
        "const": _json_value(action.const),
        "default": _json_value(action.default),
        "type": None if action.type is None else getattr(action.type, "__name__", repr(action.type)),
        "choices": None if choices is None else _json_value(list(choices)),
        "required": action.required,
    }


def cli_surface() -> dict:
    """Every command and sub-command of `adsearch` (key: its words) with its arguments, in parser order;
    no help text, metavar or description (their wording may improve), every flag and its behaviour."""
    from engine.cli import build_parser

    commands: dict[str, dict] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        commands[name] = {
            "arguments": [_action(parser, action) for action in parser._actions],
            "set_defaults": _json_value(dict(parser._defaults)),
        }
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for word, sub in action.choices.items():
                    walk(sub, f"{name} {word}")

    walk(build_parser(), "adsearch")
    return commands


# ---------------------------------------------------------------------------- compare or rewrite


def changed_parts(old, new, where: str = "", depth: int = 3) -> list[str]:
    """Where two snapshots differ, as key paths a few levels deep (e.g. `paths /api/search get`)."""
    if old == new:
        return []
    if depth == 0 or not (isinstance(old, dict) and isinstance(new, dict)):
        return [where or "(everything)"]
    parts = []
    for key in sorted(set(old) | set(new)):
        inside = f"{where} {key}".strip()
        if key not in old or key not in new:
            parts.append(f"{inside} ({'added' if key in new else 'removed'})")
        else:
            parts += changed_parts(old[key], new[key], inside, depth - 1)
    return parts


def check_snapshot(path: Path, current: dict, what: str) -> None:
    text = dump(current)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        pytest.skip(
            f"{UPDATE_VARIABLE}=1: wrote {path.name}; review `git diff tests/snapshots/` and commit it"
        )
    if not path.exists():
        pytest.fail(f"no snapshot {path}; write it with: {REGENERATE}", pytrace=False)
    before = json.loads(path.read_text())
    saved = dump(before)
    if saved == text:
        return
    where = "; ".join(changed_parts(before, json.loads(text)))
    diff = list(
        difflib.unified_diff(
            saved.splitlines(),
            text.splitlines(),
            f"{path.name} (snapshot)",
            f"{path.name} (now)",
            lineterm="",
        )
    )
    shown = "\n".join(diff[:DIFF_LINES])
    if len(diff) > DIFF_LINES:
        shown += f"\n... and {len(diff) - DIFF_LINES} more diff lines"
    pytest.fail(
        f"{what} changed (issue 22: nothing a user sees may change) in: {where}\n{shown}\n\n"
        f"If this change is intended, regenerate the snapshots: {REGENERATE}",
        pytrace=False,
    )


def test_openapi_schema_is_unchanged(tmp_path, monkeypatch):
    without_adsearch_variables(monkeypatch)
    check_snapshot(OPENAPI, openapi_schema(tmp_path / "db"), "the OpenAPI schema (/openapi.json)")


def test_cli_commands_and_flags_are_unchanged(monkeypatch):
    without_adsearch_variables(monkeypatch)
    check_snapshot(CLI, cli_surface(), "the CLI's commands or flags")


def test_surfaces_do_not_depend_on_the_machine_or_environment(tmp_path, monkeypatch):
    """Built again on "another machine" (other core count, home, cache, environment, store path),
    both surfaces come out the same: nothing machine-specific can reach a snapshot."""
    without_adsearch_variables(monkeypatch)
    schema, cli = dump(openapi_schema(tmp_path / "a")), dump(cli_surface())

    monkeypatch.setattr(os, "cpu_count", lambda: 97)
    for name, value in {
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "ADSEARCH_WORKERS": "3",
        "ADSEARCH_DB": str(tmp_path / "elsewhere"),
        "ADSEARCH_MAX_CONCURRENT_REQUESTS": "5",
        "ADSEARCH_MODEL_CACHE": str(tmp_path / "models"),
    }.items():
        monkeypatch.setenv(name, value)
    assert dump(openapi_schema(tmp_path / "b" / "other-db")) == schema
    assert dump(cli_surface()) == cli


def test_snapshots_are_valid_and_not_trivial():
    """An empty or truncated snapshot must not pass: the files hold the surfaces users know."""
    missing = [p.name for p in (OPENAPI, CLI) if not p.exists()]
    assert not missing, f"missing snapshots {missing}; write them with: {REGENERATE}"
    schema = json.loads(OPENAPI.read_text())
    assert schema["openapi"].startswith("3.") and schema["info"]["title"] == "adsearch"
    paths = schema["paths"]
    assert {"/api/search", "/api/images/{image_id}/file", "/health/ready"} <= set(paths), sorted(paths)
    assert len(paths) >= 15 and len(schema["components"]["schemas"]) >= 5
    search_parameters = {p["name"] for p in paths["/api/search"]["get"]["parameters"]}
    assert {"q", "mode", "k", "offset", "where"} <= search_parameters

    commands = json.loads(CLI.read_text())
    expected = {"ingest", "search", "serve", "evaluate", "tune", "ocr", "migrate", "facets", "doctor"}
    expected |= {"stats", "models", "models download", "models check"}
    assert {f"adsearch {c}" for c in expected} <= set(commands), sorted(commands)

    def argument(command: str, flag: str) -> dict:
        found = [a for a in commands[command]["arguments"] if flag in a["option_strings"]]
        assert len(found) == 1, f"{command} has no single {flag}"
        return found[0]

    assert argument("adsearch ingest", "--metadata")["type"] == "Path"
    assert argument("adsearch search", "--where")["action"] == "append"
    assert argument("adsearch search", "--mode")["choices"][0] == "hybrid"
    assert argument("adsearch models download", "--to")["required"] is True
    assert any(a["positional"] and a["nargs"] == "+" for a in commands["adsearch ingest"]["arguments"])

    # nothing of this machine: no working folder, home or temporary folder in either file
    locals_ = {str(Path.cwd()), str(Path.home()), tempfile.gettempdir()} - {"/", ""}
    for text in (OPENAPI.read_text(), CLI.read_text()):
        for local in locals_:  # as a JSON string, or the start of one
            assert f'"{local}"' not in text and f'"{local}/' not in text, local
