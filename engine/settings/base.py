"""What every settings section shares: the ADSEARCH_ environment prefix, and how a field says whether
the command line can set it (`Flag`) or only the environment (`ENV_ONLY`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True)
class Flag:
    """A field's CLI flag, declared next to the field (`Annotated[type, Flag(...)]`). The flag is
    `--field-name` unless `option` says otherwise; its type and choices follow the field's type.
    `parse` turns the flag's text into the field's value; its ValueError is a usage error."""

    help: str
    option: str | None = None
    metavar: str | None = None
    parse: Callable[[str], object] | None = None

    def option_for(self, field: str) -> str:
        """The flag's option string for the field named `field`."""
        return self.option or "--" + field.replace("_", "-")


@dataclass(frozen=True)
class EnvOnly:
    """Marks a field that only ADSEARCH_<NAME> sets: it has no CLI flag, by choice."""


ENV_ONLY = EnvOnly()


class Section(BaseSettings):
    """One group of settings; each field is ADSEARCH_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix="ADSEARCH_", extra="ignore")


def command_line_of(field: FieldInfo) -> Flag | EnvOnly | None:
    """The field's Flag, ENV_ONLY, or None when it declares neither."""
    return next((m for m in field.metadata if isinstance(m, (Flag, EnvOnly))), None)


def flags_of(section: type[BaseModel]) -> dict[str, Flag]:
    """The fields of `section` that have a CLI flag, in declaration order, with their flags."""
    found = {name: command_line_of(field) for name, field in section.model_fields.items()}
    return {name: flag for name, flag in found.items() if isinstance(flag, Flag)}


def name_list(value: str | Iterable[str], tidy: Callable[[str], str] = str.lower) -> tuple[str, ...]:
    """A comma-separated setting (flag or environment) or a list -> its names, tidied, each once."""
    names = value.split(",") if isinstance(value, str) else list(value)
    return tuple(dict.fromkeys(tidy(n.strip()) for n in names if n.strip()))
