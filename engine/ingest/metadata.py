"""Per-image metadata from a CSV or JSON Lines file: loaded, typed and checked here, applied by ingest.

    path,brand,year,launched,topics
    cars/audi-a7.jpg,Audi,2014,2014-03-01,cars;travel

Every row names one image by `path` (relative to the folder given to ingest, `/` separated; a file
given directly is matched by its name) or by `sha256` (of the file's bytes); a row with both is keyed
by its path. Rows for several paths of the same bytes (one point) merge, the later path winning.
Every other column is a field, stored as a top-level payload key and filterable
(`adsearch search --where brand=Audi`).

Types (engine.filters): keyword, keywords (a list of strings), integer, float, datetime. A field's
type is, first, what `--schema` says; else the type the collection already records for it; else
inferred from the values:
- CSV (every cell is text): the narrowest type every cell of the column fits: integer (written
  without leading zeros, so codes like 02134 stay text), then float, then datetime (ISO 8601,
  `YYYY-MM-DD...`), else keyword. A cell is split on `;` into a list only when the field is keywords.
- JSON Lines: values keep their JSON type. A column with lists is keywords (a single string there is
  a list of one); else the kind most values have decides: numbers -> integer when every number is an
  int, else float; strings -> datetime when every string is an ISO date, else keyword; booleans ->
  keyword. A value of another kind must then fit that type, or its row is reported and skipped.
Booleans are stored as the keywords "true" / "false" (Qdrant Edge 0.9's Python binding cannot match
a boolean payload value); a schema may say "bool" for a column of true/false, yes/no or 1/0, stored
that way. An empty cell or a JSON null means "no value" for that image.

Problems with the file as a whole (unreadable, no key column, a field named like a built-in or an
ingest payload key, a name the filter language cannot address) raise AdsearchError: nothing is
applied. A bad row (a value that does not fit its field's type, no key, a duplicate key, a row that
is not an object, a JSON row nested more than MAX_JSON_DEPTH arrays/objects deep) becomes one entry
in `problems` and is skipped; the other rows still apply.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path, PurePosixPath

from engine.errors import AdsearchError, SearchError
from engine.filters import BUILTIN_FIELDS, payload_value, typed_value
from engine.schema import PAYLOAD_FIELDS

METADATA_TYPES: tuple[str, ...] = ("keyword", "keywords", "integer", "float", "datetime")
SCHEMA_TYPES: tuple[str, ...] = (*METADATA_TYPES, "bool")  # "bool": stored as keyword "true"/"false"
KEY_COLUMNS = ("path", "sha256")
# Payload keys that ingest writes itself; a metadata field may not take their name.
INGEST_PAYLOAD_KEYS = frozenset(PAYLOAD_FIELDS)
RESERVED_NAMES = INGEST_PAYLOAD_KEYS | set(BUILTIN_FIELDS) | {"id", "path"}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # what engine.filters can address
MAX_FIELDS = 64
LIST_SEPARATOR = ";"
_INTEGER = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[+-]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$|^[+-]?\.[0-9]+$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")
# A row is an object of scalars or lists (depth 2); deeper JSON is refused before it is parsed, as a
# row nested thousands deep would exhaust the parser's recursion (a RecursionError, not one bad row).
MAX_JSON_DEPTH = 16
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class MetadataError(AdsearchError):
    """A metadata or schema file that cannot be used at all; the message says why."""


@dataclass
class _Row:
    where: str  # "metadata.csv line 7"
    values: dict[str, object]  # field -> payload value
    used: bool = False


@dataclass
class MetadataTable:
    """Typed rows of a metadata file, looked up per ingested file."""

    source: str
    fields: dict[str, str]  # name -> one of METADATA_TYPES
    by_path: dict[str, _Row] = field(default_factory=dict)
    by_sha256: dict[str, _Row] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (where, reason): rows skipped

    @property
    def rows(self) -> int:
        """Rows that will be applied (bad rows excluded)."""
        return len(self.by_path) + len(self.by_sha256)

    def for_file(self, relative_path: str, sha256: str) -> dict[str, object]:
        """Payload values for one file: its sha256 row, overridden by its path row (both marked used)."""
        values: dict[str, object] = {}
        for row in (self.by_sha256.get(sha256), self.by_path.get(normalise_path(relative_path) or "")):
            if row is not None:
                row.used = True
                values.update(row.values)
        return values

    def unmatched(self) -> list[tuple[str, str]]:
        """(where, reason) for every row whose key named no file looked up with `for_file`."""
        out = [
            (row.where, f"no ingested image has the path '{key}' (paths are relative to the folder ingested)")
            for key, row in self.by_path.items()
            if not row.used
        ]
        out += [
            (row.where, f"no ingested image has the sha256 {key}")
            for key, row in self.by_sha256.items()
            if not row.used
        ]
        return sorted(out, key=lambda item: _line_order(item[0]))

    def describe(self) -> str:
        """One line for people: the rows and the fields with their types."""
        fields = ", ".join(f"{name} ({kind})" for name, kind in self.fields.items()) or "no fields"
        return f"metadata from {self.source}: {self.rows} rows; fields {fields}"


def load_metadata(
    path: str | Path,
    schema: dict[str, str] | str | Path | None = None,
    known: dict[str, str] | None = None,
) -> MetadataTable:
    """Read, type and check a metadata file (.csv, or JSON Lines: .jsonl / .ndjson / .json).

    `schema` (a dict or a JSON file of {field: type}) fixes types; `known` are the types the
    collection already records (used where the schema says nothing). MetadataError for a file that
    cannot be used at all; bad rows are collected in `.problems`."""
    path = Path(path)
    if schema is None:
        schema = {}
    elif isinstance(schema, dict):
        schema = _check_schema(schema, "schema")
    else:
        schema = load_schema(schema)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MetadataError(
            f"cannot read metadata file {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    records, problems, is_csv = _records(path, text)
    columns = _columns(path.name, records)
    normalise = {name: kind for name, kind in schema.items() if kind == "bool"}
    fields: dict[str, str] = {}
    for name in columns:
        if name in schema:
            fields[name] = "keyword" if schema[name] == "bool" else schema[name]
        elif known and name in known and known[name] in METADATA_TYPES:
            fields[name] = known[name]
        else:
            fields[name] = _infer([r[name] for _, r in records if _present(r.get(name))], is_csv)
    table = MetadataTable(path.name, fields, problems=problems)
    keys: dict[str, str] = {}  # key -> where it was first seen
    for where, record in records:
        _add_row(table, where, record, normalise, is_csv, keys)
    table.problems.sort(key=lambda item: _line_order(item[0]))
    return table


def load_schema(path: str | Path) -> dict[str, str]:
    """A JSON file {"field": "type"}; MetadataError when it is not one."""
    path = Path(path)
    try:
        data = _parse_json(Path(path).read_text(encoding="utf-8-sig"), MAX_JSON_DEPTH)
    except OSError as exc:
        raise MetadataError(f"cannot read schema file {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MetadataError(f"schema file {path} is not valid JSON: {exc}") from None
    return _check_schema(data, f"schema file {path.name}")


def normalise_path(text: str) -> str | None:
    """A row's path as the relative POSIX form ingest compares with; None when it cannot be one."""
    text = text.strip().replace("\\", "/")
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:/", text):
        return None
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


# ---------------------------------------------------------------------- reading


def _records(path: Path, text: str) -> tuple[list[tuple[str, dict]], list[tuple[str, str]], bool]:
    """(where, {column: raw value}) per data row, problems with rows that are not rows, is-CSV."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json") or (suffix != ".csv" and text.lstrip()[:1] in ("{", "[")):
        return (*_json_records(path.name, text), False)
    return (*_csv_records(path.name, text), True)


def _csv_records(name: str, text: str) -> tuple[list[tuple[str, dict]], list[tuple[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise MetadataError(f"metadata file {name} is empty") from None
    except csv.Error as exc:
        raise MetadataError(f"{name} line 1: {exc}") from None
    header = [h.strip() for h in header]
    for number, column in enumerate(header, 1):
        if not column:
            raise MetadataError(f"{name}: column {number} of the header has no name")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise MetadataError(f"{name}: the header names {', '.join(duplicates)} more than once")
    records, problems = [], []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append((f"{name} line {reader.line_num}", f"not a CSV row ({exc})"))
            continue
        where = f"{name} line {reader.line_num}"
        if not any(c.strip() for c in cells):
            continue  # blank line
        if len(cells) > len(header):
            problems.append((where, f"{len(cells)} cells, but the header has {len(header)} columns"))
            continue
        records.append((where, dict(zip(header, cells, strict=False))))
    return records, problems


def _json_records(name: str, text: str) -> tuple[list[tuple[str, dict]], list[tuple[str, str]]]:
    """JSON Lines (one object a line), or one JSON array of objects.

    A text starting with `[` is read as one array; when it is not one and the file is named .jsonl or
    .ndjson, it is read a line at a time (a first row that is not an object is then one bad row)."""
    numbered: list[tuple[str, object]] = []
    problems: list[tuple[str, str]] = []
    if text.lstrip().startswith("["):
        try:
            items = _parse_json(text, MAX_JSON_DEPTH + 1)  # the array holds the rows
        except ValueError as exc:
            if not name.lower().endswith((".jsonl", ".ndjson")):
                raise MetadataError(f"{name} is not valid JSON: {exc}") from None
        else:
            return _objects([(f"{name} item {i}", item) for i, item in enumerate(items, 1)], problems)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            numbered.append((f"{name} line {number}", _parse_json(line, MAX_JSON_DEPTH)))
        except ValueError as exc:
            problems.append((f"{name} line {number}", f"not valid JSON ({exc})"))
    return _objects(numbered, problems)


def _objects(
    numbered: list[tuple[str, object]], problems: list[tuple[str, str]]
) -> tuple[list[tuple[str, dict]], list[tuple[str, str]]]:
    records = [(where, item) for where, item in numbered if isinstance(item, dict)]
    problems += [(where, "not a JSON object") for where, item in numbered if not isinstance(item, dict)]
    return records, problems


def _parse_json(text: str, max_depth: int) -> object:
    """json.loads, refusing (ValueError) text whose arrays/objects nest more than `max_depth` deep
    before parsing it, and whatever still exhausts the parser's recursion."""
    depth = json_depth(text) if text.count("[") + text.count("{") > max_depth else 0
    if depth > max_depth:
        raise ValueError(f"nested {depth:,} arrays/objects deep; at most {max_depth}")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"nested too deep to parse; at most {max_depth} arrays/objects") from None


def json_depth(text: str) -> int:
    """How deep JSON arrays and objects nest in `text` (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def _columns(name: str, records: list[tuple[str, dict]]) -> list[str]:
    """Field columns in first-seen order; MetadataError for a name that cannot be a field."""
    columns: dict[str, str] = {}
    has_key = False
    for where, record in records:
        for column in record:
            if column in KEY_COLUMNS:
                has_key = True
            elif column not in columns:
                columns[column] = where
    if records and not has_key:
        raise MetadataError(f"{name}: no 'path' or 'sha256' column to say which image a row is about")
    for column, where in columns.items():
        _check_name(column, where)
    if len(columns) > MAX_FIELDS:
        raise MetadataError(f"{name}: {len(columns)} fields; at most {MAX_FIELDS}")
    return list(columns)


def _check_name(column: str, where: str) -> None:
    if column in RESERVED_NAMES or column.startswith(("ocr_", "_")):
        raise MetadataError(
            f"{where}: the field '{column}' has the name of a field every image already has; rename the "
            f"column (reserved: {', '.join(sorted(RESERVED_NAMES - {'id', 'path'}))}, ocr_*, _*)"
        )
    if not NAME.match(column):
        raise MetadataError(
            f"{where}: the field name '{column}' cannot be filtered on; use letters, digits and _ "
            "(not starting with a digit)"
        )


def _check_schema(data: object, what: str) -> dict[str, str]:
    if not isinstance(data, dict):
        raise MetadataError(f'{what} must be a JSON object {{"field": "type"}}')
    for name, kind in data.items():
        if name in KEY_COLUMNS:
            raise MetadataError(f"{what}: '{name}' is the key column, not a field: leave it out")
        _check_name(name, what)
        if kind not in SCHEMA_TYPES:
            raise MetadataError(
                f"{what}: field {name} has type {kind!r}; use one of {', '.join(SCHEMA_TYPES)}"
            )
    return dict(data)


# ---------------------------------------------------------------------- typing


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip()) and value != []


def _infer(values: list[object], is_csv: bool) -> str:
    """A column's type from its values: CSV text, the narrowest type every cell fits; JSON, the
    JSON kind most values have (values of another kind are then checked against it)."""
    if not values:
        return "keyword"
    if is_csv:
        return _narrowest([v.strip() for v in values if isinstance(v, str)])
    kinds = Counter(_json_kind(v) for v in values)
    if "list" in kinds:  # a single value beside lists is a list of one
        return "keywords"
    kind = max(kinds, key=lambda k: (kinds[k], k == "string"))  # a tie goes to text
    if kind == "number":
        numbers = [v for v in values if _json_kind(v) == "number"]
        return "integer" if all(isinstance(v, int) for v in numbers) else "float"
    if kind == "string":
        texts = [v.strip() for v in values if isinstance(v, str)]
        return "datetime" if all(_is_date(v) for v in texts) else "keyword"
    return "keyword"  # booleans (as "true"/"false"), objects (rejected row by row)


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "list"}.get(type(value), "object")


def _narrowest(texts: list[str]) -> str:
    if all(_INTEGER.match(v) for v in texts):
        return "integer"
    if all(_INTEGER.match(v) or (_FLOAT.match(v) and _parses(v, "float")) for v in texts):
        return "float"
    if all(_is_date(v) for v in texts):
        return "datetime"
    return "keyword"


def _is_date(text: str) -> bool:
    return bool(_DATE.match(text)) and _parses(text, "datetime")


def _parses(value: object, kind: str) -> bool:
    try:
        typed_value(value, kind, "-")
    except SearchError:
        return False
    return True


def _add_row(
    table: MetadataTable,
    where: str,
    record: dict,
    normalise: dict[str, str],
    is_csv: bool,
    keys: dict[str, str],
) -> None:
    """Type one row and file it under its key; a bad row becomes one problem and is skipped."""
    try:
        key_kind, key = _row_key(record)
        values = {}
        for name, raw in record.items():
            if name in KEY_COLUMNS or not _present(raw):
                continue
            value = _value(raw, table.fields[name], name, name in normalise, is_csv)
            if value is not None:
                values[name] = value
    except ValueError as exc:
        table.problems.append((where, str(exc)))
        return
    seen = keys.get(f"{key_kind}:{key}")
    if seen is not None:
        table.problems.append((where, f"{key_kind} '{key}' is already given in {seen}"))
        return
    keys[f"{key_kind}:{key}"] = where
    target = table.by_path if key_kind == "path" else table.by_sha256
    target[key] = _Row(where, values)


def _row_key(record: dict) -> tuple[str, str]:
    path, sha = record.get("path"), record.get("sha256")
    if _present(path):
        if not isinstance(path, str) or normalise_path(path) is None:
            raise ValueError(f"path {path!r} is not a path relative to the ingested folder")
        return "path", normalise_path(path)  # type: ignore[return-value]
    if _present(sha):
        text = sha.strip().lower() if isinstance(sha, str) else ""
        if not _SHA256.match(text):
            raise ValueError(f"sha256 {sha!r} is not 64 hexadecimal digits")
        return "sha256", text
    raise ValueError("no path or sha256: the row names no image")


def _value(raw: object, kind: str, name: str, as_bool: bool, is_csv: bool) -> object:
    """A raw cell / JSON value as the payload value of a field of type `kind`; ValueError if not one."""
    try:
        if kind == "keywords":
            if isinstance(raw, str):
                items = raw.split(LIST_SEPARATOR) if is_csv else [raw]
            elif isinstance(raw, list):
                items = raw
            else:
                items = [raw]
            out = [typed_value(_scalar(item, name, kind), kind, name) for item in items if _present(item)]
            return list(dict.fromkeys(out)) or None
        if isinstance(raw, list):
            raise ValueError(f"a list is not a valid {kind} value for field {name}")
        if as_bool:
            return _boolean(raw, name)
        value = typed_value(_scalar(raw, name, kind), kind, name)
        return payload_value(value, kind)
    except SearchError as exc:
        raise ValueError(str(exc)) from None


def _scalar(raw: object, name: str, kind: str) -> object:
    """JSON booleans become the keywords "true"/"false"; objects are never values."""
    if isinstance(raw, dict | list):
        raise ValueError(f"{json.dumps(raw)[:60]} is not a valid {kind} value for field {name}")
    if isinstance(raw, bool):
        if kind not in ("keyword", "keywords"):
            raise ValueError(f"'{str(raw).lower()}' is not a valid {kind} value for field {name}")
        return "true" if raw else "false"
    return raw


def _boolean(raw: object, name: str) -> str:
    text = str(raw).strip().lower()
    if text in _TRUE:
        return "true"
    if text in _FALSE:
        return "false"
    raise ValueError(f"'{raw}' is not a valid bool value for field {name} (true/false, yes/no, 1/0)")


def _line_order(where: str) -> tuple[str, int]:
    name, _, rest = where.rpartition(" ")
    return (name, int(rest)) if rest.isdigit() else (where, 0)
