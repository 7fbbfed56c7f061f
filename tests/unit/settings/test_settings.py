"""Issue 22: the settings in sections (engine/settings/, api/settings.py), each field's CLI flag
declared once beside it, and the OCR knobs declared once (ocr_text's OcrSettings)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import pytest

from api.settings import ServeSection, ServeSettings
from engine.cli import build_parser, main, settings_of
from engine.cli.common import SETTING_ACTIONS
from engine.settings import EnvOnly, Flag, Settings, command_line_of, flags_of
from engine.settings.ocr import KNOBS, NOT_SETTINGS, PREFIX
from ocr_text import OcrSettings

# what users set in the environment (ADSEARCH_<NAME>): these names must not change
ENVIRONMENT_NAMES = {
    "db", "collection", "qdrant_url", "qdrant_api_key", "shard_number", "replication_factor", "quantize",
    "hnsw_ef", "clip_model", "clip_dim", "require_visual", "clip_precision", "text_precision",
    "quant_min_cosine", "quant_min_agreement", "onnx", "model_cache", "text_model", "sparse_model",
    "bm25_avg_len", "keyword_ngram", "ocr_readers", "ocr_ppocr_models", "ocr_ppocr_min_confidence",
    "ocr_ppocr_det_side", "ocr_lang", "ocr_psm", "ocr_min_confidence", "ocr_scales",
    "ocr_retry_below_words", "cluster", "workers", "batch_size", "max_file_bytes", "url_schemes",
    "url_timeout", "max_image_pixels", "rrf_k", "prefetch_limit", "weights", "mmr_diversity", "fusion",
    "exact_coverage", "exact_stand_out", "exact_weight",
}  # fmt: skip
SERVE_NAMES = {"host", "port", "api_key", "max_upload_bytes", "max_upload_files", "max_query_chars",
               "allowed_hosts", "max_concurrent_requests", "log_format", "log_queries",
               "backup_dir"}  # fmt: skip

# one value per flagged field as typed on the command line, and the setting it becomes
FLAG_VALUES = {
    "db": ("elsewhere", Path("elsewhere")),
    "collection": ("mine", "mine"),
    "qdrant_url": ("http://qdrant:6333", "http://qdrant:6333"),
    "qdrant_api_key": ("k3y", "k3y"),
    "shard_number": ("7", 7),
    "replication_factor": ("2", 2),
    "clip_model": ("some/clip", "some/clip"),
    "text_model": ("some/text", "some/text"),
    "require_visual": (None, True),  # a switch
    "clip_precision": ("fp32", "fp32"),
    "text_precision": ("int8", "int8"),
    "ocr_readers": ("tesseract,tesseract", ("tesseract",)),
    "workers": ("3", 3),
    "batch_size": ("5", 5),
    "cluster": (" local:2 ", "local:2"),
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("8123", 8123),
    "allowed_hosts": ("Ads.Example.org", ("ads.example.org",)),
    "max_concurrent_requests": ("9", 9),
    "log_format": ("json", "json"),
    "log_queries": (None, True),  # a switch
    "backup_dir": ("/srv/backups", Path("/srv/backups")),
}
# the arguments each command needs besides the flag under test
REQUIRED = {
    "ingest": ["ads/"], "ocr": ["ad.png"], "facets": ["brand"], "migrate": ["--from", "a", "--to", "b"],
    "evaluate": ["--queries", "q.tsv", "--qrels", "q.qrels"],
    "board create": ["B"], "board show": ["B"], "board add": ["B", "ID"], "board remove": ["B", "ID"],
    "board delete": ["B"], "board like": ["B"], "board export": ["B", "--zip", "b.zip"],
    "watch add": ["W"], "watch show": ["W"], "watch rm": ["W"], "backup": ["--to", "b"], "restore": ["b"],
}  # fmt: skip


@pytest.fixture(autouse=True)
def no_adsearch_variables(monkeypatch):
    for name in list(os.environ):
        if name.startswith("ADSEARCH_"):
            monkeypatch.delenv(name)


def commands() -> dict[str, object]:
    parser = build_parser()
    return dict(parser._subparsers._group_actions[0].choices)


def with_actions() -> dict[str, object]:
    """Every command, and each action of a command made of actions (`board list`, `watch add`)."""
    found = {}
    for name, sub in commands().items():
        actions = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        found |= {f"{name} {n}": p for a in actions for n, p in a.choices.items()} if actions else {name: sub}
    return found


def test_every_field_has_a_flag_or_is_marked_env_only():
    """A new field must say how it is set: `Annotated[type, Flag(...)]` or `Annotated[type, ENV_ONLY]`."""
    unmarked = [name for name, field in ServeSettings.model_fields.items() if command_line_of(field) is None]
    assert not unmarked, f"fields with neither Flag nor ENV_ONLY: {unmarked}"
    for name, field in ServeSettings.model_fields.items():
        marks = [m for m in field.metadata if isinstance(m, (Flag, EnvOnly))]
        assert len(marks) == 1, (name, marks)
    assert set(FLAG_VALUES) == set(flags_of(ServeSettings)), "give each flagged field a value above"


def test_the_environment_names_are_unchanged_and_http_stays_out_of_the_engine(monkeypatch):
    assert set(Settings.model_fields) == ENVIRONMENT_NAMES
    assert set(ServeSettings.model_fields) == ENVIRONMENT_NAMES | SERVE_NAMES
    assert set(ServeSection.model_fields) == SERVE_NAMES
    monkeypatch.setenv("ADSEARCH_PORT", "8123")
    monkeypatch.setenv("ADSEARCH_HNSW_EF", "64")
    assert ServeSettings().port == 8123 and ServeSettings().hnsw_ef == Settings().hnsw_ef == 64
    with pytest.raises(TypeError, match="Settings has no setting api_key"):  # never silently dropped
        Settings().with_overrides(api_key="s3cret")


@pytest.mark.parametrize("command", [c for c in with_actions() if not c.startswith("models ")])
def test_every_setting_flag_of_a_command_reaches_its_setting(command):
    """Each flag made from a field's Flag sets that field through settings_of, with no list of names."""
    sub = with_actions()[command]
    flags = {a.dest: a for a in sub._actions if a in SETTING_ACTIONS}
    assert flags, f"{command} takes no setting flag"
    for field, action in flags.items():
        text, expected = FLAG_VALUES[field]
        option = max(action.option_strings, key=len)
        argv = [*command.split(), *REQUIRED.get(command, []), option, *([] if text is None else [text])]
        settings = settings_of(build_parser().parse_args(argv), ServeSettings)
        assert getattr(settings, field) == expected, (argv, getattr(settings, field))
        assert field in settings.model_fields_set  # a flag counts as set: tuned defaults yield to it


def test_commands_take_the_flags_of_the_sections_they_name():
    by_command = {
        name: {a.dest for a in sub._actions if a in SETTING_ACTIONS} for name, sub in commands().items()
    }
    store = {"db", "collection", "qdrant_url", "qdrant_api_key", "shard_number", "replication_factor"}
    models = {"clip_model", "text_model", "require_visual", "clip_precision", "text_precision"}
    assert by_command["ingest"] == store | models | {"ocr_readers", "workers", "batch_size", "cluster"}
    assert by_command["serve"] == store | models | {"ocr_readers"} | set(flags_of(ServeSection))
    assert by_command["search"] == by_command["doctor"] == store | models | {"ocr_readers"}
    assert by_command["stats"] == by_command["facets"] == store
    assert by_command["migrate"] == store - {"db", "qdrant_url"}  # its own --batch-size is no setting
    assert by_command["ocr"] == {"ocr_readers"} and by_command["models"] == set()
    readers = next(a for a in commands()["ocr"]._actions if a.dest == "ocr_readers")
    assert readers.option_strings == ["--readers"]  # renamed for this command, same declaration


def test_search_weights_weighs_one_query_and_never_reaches_the_setting():
    args = build_parser().parse_args(["search", "car", "--weights", "text=9"])
    assert args.weights == "text=9" and settings_of(args).weights == Settings().weights


def test_a_bad_value_names_the_flag_the_command_has(capsys, monkeypatch):
    def error_lines(*argv: str) -> list[str]:
        assert main(list(argv)) == 2
        return capsys.readouterr().err.strip().splitlines()

    monkeypatch.setenv("ADSEARCH_WORKERS", "0")
    assert error_lines("ingest", "nowhere")[0].startswith(
        "adsearch: error: bad value for --workers / ADSEARCH_WORKERS: "
    )
    # stats has no --workers: the line names the variable alone
    assert error_lines("stats")[0].startswith("adsearch: error: bad setting ADSEARCH_WORKERS: ")
    monkeypatch.delenv("ADSEARCH_WORKERS")
    monkeypatch.setenv("ADSEARCH_OCR_READERS", "nosuch")
    line = error_lines("ocr", "ad.png")[0]
    assert line.startswith(
        "adsearch: error: bad value for --readers / ADSEARCH_OCR_READERS: unknown OCR reader"
    )
    monkeypatch.delenv("ADSEARCH_OCR_READERS")
    # the flag's own parse (Flag.parse): a usage error line, before any setting is read
    assert error_lines("ocr", "ad.png", "--readers", "nosuch") == [
        "adsearch: error: unknown OCR reader(s) nosuch; known: tesseract, ppocr"
    ]
    monkeypatch.setenv("ADSEARCH_BATCH_SIZE", "0")  # migrate's --batch-size counts points, not this
    assert error_lines("migrate", "--from", "a", "--to", "b")[0].startswith(
        "adsearch: error: bad setting ADSEARCH_BATCH_SIZE: "
    )


# one non-default value per OCR knob, as the environment gives it, and as ocr_text receives it
OCR_VALUES = {
    "readers": ("tesseract", ("tesseract",)),
    "lang": ("deu", "deu"),
    "psm": ("6", 6),
    "min_confidence": ("42.5", 42.5),
    "scales": ("[900, 900, 1200]", (900, 1200)),
    "retry_below_words": ("3", 3),
    "ppocr_min_confidence": ("33", 33.0),
    "ppocr_det_side": ("640", 640),
    "ppocr_models": ("v5", "v5"),
}


def test_each_ocr_knob_is_declared_once_in_ocr_text_and_read_from_the_environment(monkeypatch):
    knobs = [f for f in dataclasses.fields(OcrSettings) if f.name not in NOT_SETTINGS]
    assert {f.name for f in knobs} == set(KNOBS) == set(OCR_VALUES)
    ocr_fields = {name for name in Settings.model_fields if name.startswith(PREFIX)}
    assert ocr_fields == {PREFIX + f.name for f in knobs}
    for knob in knobs:  # the defaults are ocr_text's
        assert Settings.model_fields[PREFIX + knob.name].default == knob.default, knob.name
    assert Settings().ocr_settings() == OcrSettings()
    for name, (text, _) in OCR_VALUES.items():
        monkeypatch.setenv(f"ADSEARCH_OCR_{name.upper()}", text)
    carried = Settings().ocr_settings()
    for name, (_, expected) in OCR_VALUES.items():
        assert getattr(carried, name) == expected != getattr(OcrSettings(), name), name
    assert carried.timeout_s == OcrSettings().timeout_s


def test_ocr_knob_checks_stay_with_the_setting():
    from pydantic import ValidationError

    for field, value in [
        ("ocr_psm", 14),
        ("ocr_ppocr_det_side", 16),
        ("ocr_scales", (0,)),
        ("ocr_scales", ()),
    ]:
        with pytest.raises(ValidationError) as caught:
            Settings().with_overrides(**{field: value})
        assert caught.value.errors()[0]["loc"][0] == field


def test_serve_settings_over_engine_settings_keep_what_was_set(monkeypatch):
    monkeypatch.setenv("ADSEARCH_PORT", "8123")
    engine = Settings(rrf_k=4, collection="mine")
    served = ServeSettings.serving(engine)
    assert isinstance(served, ServeSettings) and served.port == 8123 and served.collection == "mine"
    assert served.model_fields_set == {"rrf_k", "collection", "port"}
    tuned = served.with_tuned({"rrf_k": 9, "prefetch_limit": 50})  # set explicitly: rrf_k stays 4
    assert (tuned.rrf_k, tuned.prefetch_limit) == (4, 50) and isinstance(tuned, ServeSettings)
    assert ServeSettings.serving(served) is served


def test_a_flag_declaration_defaults_to_the_field_name():
    assert Flag("x").option_for("max_concurrent_requests") == "--max-concurrent-requests"
    assert Flag("x", option="--readers").option_for("ocr_readers") == "--readers"


def test_create_app_serves_a_library_opened_with_the_engine_settings(tmp_path, monkeypatch):
    from api import create_app
    from engine.library import Library

    monkeypatch.setenv("ADSEARCH_MAX_CONCURRENT_REQUESTS", "5")
    with Library(Settings(db=tmp_path / "db", collection="mine")) as library:
        app = create_app(library)  # the serve section comes from the environment, the rest is kept
        assert isinstance(library.settings, ServeSettings) and library.settings.collection == "mine"
        assert app.state.occupancy.limit == 5
