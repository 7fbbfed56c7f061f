"""The filter language, parsed once and handed to the store as plain clauses.

    brand=Audi   date>=2014-01-01   topic in [cars,travel]   has_text=true   width<800   format!=GIF

A clause names a payload field the collection knows (built-in fields every point has, plus the
metadata fields declared at ingest), with a value of that field's type. The store turns clauses into
a Qdrant filter, applied to every prefetch and to the fusion, so filtered results are exact.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from engine.errors import SearchError
from engine.schema import BOARDS_FIELD, FILTERABLE_FIELDS

FieldType = Literal["keyword", "keywords", "integer", "float", "datetime", "bool"]
FIELD_TYPES: tuple[str, ...] = ("keyword", "keywords", "integer", "float", "datetime", "bool")
# Fields every point has (written at ingest); metadata may not redefine them.
BUILTIN_FIELDS = FILTERABLE_FIELDS  # the fields every image has (engine.schema)
# Other names a filter or a facet may give a field (when the collection has no field of that name).
FIELD_ALIASES = {"board": BOARDS_FIELD}
RANGE_OPS = (">=", "<=", ">", "<")
MAX_IN_VALUES = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what an integer field holds (Qdrant's payload integers)
_CLAUSE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|=|>|<|\s+not\s+in\s+|\s+in\s+)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Clause:
    """One condition: `field op value`; op is =, !=, in, not in, >=, <=, >, <, or, on the OCR text,
    phrase (the words in this order) and without (not this word)."""

    field: str
    op: str
    value: object  # str | int | float | bool | datetime, or a tuple of them for in / not in


TEXT_FIELD = "ocr_text"
_PHRASE = re.compile(r'"([^"]*)"')
_EXCLUDED = re.compile(r"(?:^|\s)-([A-Za-z0-9][\w'-]*)")


@dataclass(frozen=True)
class QueryParts:
    """A typed query split into what the vectors embed and the exact-wording conditions."""

    text: str  # the query with quotes and -words removed (phrase words stay: they are still meant)
    clauses: tuple[Clause, ...]  # phrase / without clauses on the OCR text


def split_query(query: str) -> QueryParts:
    """'"just do it" shoes -kids' -> text 'just do it shoes', clauses: the OCR text contains the
    phrase "just do it" and not the word "kids"."""
    phrases = [" ".join(p.split()) for p in _PHRASE.findall(query) if p.split()]
    rest = _PHRASE.sub(lambda m: f" {m.group(1)} ", query)
    excluded = [w.lower() for w in _EXCLUDED.findall(rest)]
    rest = _EXCLUDED.sub(" ", rest)
    clauses = [Clause(TEXT_FIELD, "phrase", p) for p in phrases]
    clauses += [Clause(TEXT_FIELD, "without", w) for w in dict.fromkeys(excluded)]
    words = [w for w in rest.split() if w != "-"]  # a lone minus excludes nothing
    return QueryParts(" ".join(words), tuple(clauses))


def free_words(query: str) -> list[str]:
    """The words of a query outside its "phrases" and -words: none means the query is a filter."""
    rest = _EXCLUDED.sub(" ", _PHRASE.sub(" ", query))
    return [w for w in rest.split() if w != "-"]


def parse_where(texts: list[str], fields: dict[str, str]) -> list[Clause]:
    """Parse `--where` clauses against the known fields (name -> type); SearchError with the reason.
    Equality on a float field becomes the closed range [value, value] (two clauses)."""
    return [parse_clause(text, fields) for text in texts if text.strip()]


def field_name(name: str, fields: dict[str, str]) -> str:
    """The field `name` stands for: itself, or the field it is an alias of (FIELD_ALIASES)."""
    return name if name in fields else FIELD_ALIASES.get(name, name)


def parse_clause(text: str, fields: dict[str, str]) -> Clause:
    match = _CLAUSE.match(text)
    if not match:
        raise SearchError(f"bad filter '{text}': use field=value, field>=value or field in [a,b]")
    name, op, raw = field_name(match.group(1), fields), " ".join(match.group(2).split()), match.group(3)
    if name not in fields:
        raise SearchError(f"bad filter '{text}': unknown field '{name}'; known: {', '.join(sorted(fields))}")
    kind = fields[name]
    if op in RANGE_OPS and kind not in ("integer", "float", "datetime"):
        raise SearchError(f"bad filter '{text}': {op} needs a number or date field; {name} is {kind}")
    if op in ("in", "not in"):
        values = _list_values(raw, text)
        return Clause(name, op, tuple(dict.fromkeys(typed_value(v, kind, name) for v in values)))
    return Clause(name, op, typed_value(_unquote(raw), kind, name))


class _Unfit(ValueError):
    """A value of the right form that a field cannot hold; the message says why."""


def typed_value(raw: object, kind: str, name: str) -> object:
    """`raw` (text from a filter or a CSV cell, or a JSON value) as a value of `kind`; SearchError if
    it is not one."""
    try:
        return _CONVERT[kind](raw)
    except _Unfit as exc:
        raise SearchError(f"'{raw}' is not a valid {kind} value for field {name}: {exc}") from None
    except (ValueError, TypeError, OverflowError):
        raise SearchError(f"'{raw}' is not a valid {kind} value for field {name}") from None


def _list_values(raw: str, text: str) -> list[str]:
    if not (raw.startswith("[") and raw.endswith("]")):
        raise SearchError(f"bad filter '{text}': a list is written [a, b, c]")
    values = [_unquote(v) for v in raw[1:-1].split(",") if v.strip()]
    if not values or len(values) > MAX_IN_VALUES:
        raise SearchError(f"bad filter '{text}': give 1 to {MAX_IN_VALUES} values")
    return values


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _keyword(raw: object) -> str:
    if isinstance(raw, bool | dict | list):
        raise ValueError
    text = str(raw).strip()
    if not text or len(text) > 500:
        raise ValueError
    return text


def _integer(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError
        value = int(raw)
    else:
        value = int(str(raw).strip())
    if not INT64_MIN <= value <= INT64_MAX:
        raise _Unfit(f"integers are stored in 64 bits, from {INT64_MIN} to {INT64_MAX}")
    return value


def _float(raw: object) -> float:
    if isinstance(raw, bool):
        raise ValueError
    value = float(str(raw).strip()) if not isinstance(raw, int | float) else float(raw)
    if not math.isfinite(value):
        raise ValueError
    return value


def _datetime(raw: object) -> datetime:
    """ISO date or date-time; a date is midnight UTC, a naive time is UTC."""
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    else:
        value = datetime.fromisoformat(str(raw).strip())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError


_CONVERT = {
    "keyword": _keyword,
    "keywords": _keyword,  # a clause matches one element of the list
    "integer": _integer,
    "float": _float,
    "datetime": _datetime,
    "bool": _bool,
}


def payload_value(value: object, kind: str) -> object:
    """How a typed value is stored in the payload (datetimes as RFC 3339 text, as Qdrant indexes them)."""
    if kind == "datetime":
        return value.isoformat()  # type: ignore[union-attr]
    return value
