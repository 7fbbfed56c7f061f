"""What every command uses, built-in or added by another package: `Command`, the setting flags
(store_options, model_options, ocr_options, setting_flags), settings_of, open_library and say."""

from __future__ import annotations

import argparse
import types
import typing
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from engine.errors import UsageError
from engine.settings import Flag, ModelsSection, OcrSection, Settings, StoreSection, flags_of
from engine.terminal import printable

# the argparse actions made from a settings field's Flag: an error line names them (see engine.cli)
SETTING_ACTIONS: weakref.WeakSet[argparse.Action] = weakref.WeakSet()


@dataclass(frozen=True)
class Command:
    """A command of `adsearch`, built in (engine/cli/<name>.py) or added by another package
    (entry point group COMMAND_GROUP, e.g. `serve` from api/, so the engine never imports its
    faces): its name, how it adds its sub-parser (given the sub-parsers; store_options /
    model_options add the common flags), and what it runs (the parsed arguments -> exit status)."""

    name: str
    add_parser: Callable[[argparse._SubParsersAction], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]
    after: str | None = None  # the built-in command it is listed after in `--help` (default: last)


def say(text: str, **options) -> None:
    """Print one line that names files, URLs or values read from them, control characters escaped
    (engine.terminal): what the CLI prints about files goes through `printable`, here or at the call."""
    print(printable(text), **options)


def _argument_options(annotation: object, flag: Flag) -> dict:
    """add_argument's options for a field of this type: a switch, choices, or a converting type."""
    options: dict = {"metavar": flag.metavar} if flag.metavar else {}
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if annotation is bool:
        return options | {"action": "store_true", "default": None}  # None: the flag was not given
    if typing.get_origin(annotation) is typing.Literal:
        return options | {"choices": typing.get_args(annotation)}
    if annotation in (int, float, Path):
        return options | {"type": annotation}
    return options  # text, checked and converted by the field's own validation


def setting_flags(
    target,
    section: type[BaseModel],
    names: Iterable[str] | None = None,
    *,
    options: Mapping[str, str] | None = None,
    helps: Mapping[str, str] | None = None,
) -> None:
    """Add to `target` (a parser or an argument group) the flag of each field of `section` that has one
    (or of the fields `names` only), as the field's Flag declares it; `options` renames a flag for this
    command, `helps` words its help for this command. The flag's value is the field's, by name."""
    declared = flags_of(section)
    for name in names or declared:
        flag = declared[name]
        option = (options or {}).get(name) or flag.option_for(name)
        help_text = (helps or {}).get(name, flag.help)
        kind = section.model_fields[name].annotation
        action = target.add_argument(option, dest=name, help=help_text, **_argument_options(kind, flag))
        SETTING_ACTIONS.add(action)


def store_options(parser: argparse.ArgumentParser) -> None:
    """The `store` flags: where the collection is (--db, --collection, --qdrant-url, ...)."""
    setting_flags(parser.add_argument_group("store"), StoreSection)


def model_options(parser: argparse.ArgumentParser) -> None:
    """The `models` flags: --clip-model, --text-model, --require-visual and the precisions."""
    setting_flags(parser.add_argument_group("models"), ModelsSection)


def ocr_options(parser: argparse.ArgumentParser, flag: str = "--ocr-readers") -> None:
    """The `OCR` flag: which readers (`flag` names it in this command)."""
    setting_flags(parser.add_argument_group("OCR"), OcrSection, options={"ocr_readers": flag})


def settings_of(args: argparse.Namespace, kind: type[Settings] = Settings) -> Settings:
    """The `kind` of settings a command runs with: defaults < ADSEARCH_* < the flags given in `args`
    (every field of `kind` that has a flag; a flag a command does not have reads as not given)."""
    overrides = {}
    for name, flag in flags_of(kind).items():
        value = getattr(args, name, None)
        if value is not None and flag.parse:
            try:
                value = flag.parse(value)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        overrides[name] = value
    return kind().with_overrides(**overrides)


def open_library(settings: Settings, need_collection: bool = False, load_models: bool = True):
    """Open the collection and load the encoders at the same time (both take seconds on a big
    collection); the collection's errors are reported first, then the encoders'."""
    from concurrent.futures import ThreadPoolExecutor

    from engine.library import Library
    from engine.models.encoders import load_encoders, say_image_off

    with ThreadPoolExecutor(1, thread_name_prefix="load-encoders") as pool:
        # quiet while the store opens: a store's error stays the only line
        models = pool.submit(load_encoders, settings, True) if load_models else None
        library = Library(settings, encoders=models)  # a store that fails to open: raised here
    try:
        if need_collection and not library.exists():
            where = settings.qdrant_url or settings.db
            raise UsageError(
                f"collection '{settings.collection}' does not exist in {where}: run `adsearch ingest` first"
            )
        if load_models:  # loaded now: a CLIP failure is reported before any work
            say_image_off(settings, library.encoders)
    except BaseException:
        library.close()
        raise
    return library
