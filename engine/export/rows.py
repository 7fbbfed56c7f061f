"""The library's own tables as export rows: a search (every ranked hit up to MAX_HITS), a browse
(every matching image, streamed through the store's filtered scroll), a board's ads and facet counts
(trend tables: trend_rows.py). Each is an `Export`: its columns (with kinds, so parquet has a fixed
schema) and its rows, produced lazily; every check (fields, filters, the query, the board) runs when
the Export is made, before the first row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from engine.boards import ORDER_FIELD
from engine.channels import fused_names
from engine.export.base import Column, ExportError
from engine.filters import split_query
from engine.schema import HEAVY_FIELDS
from engine.search.request import MAX_HITS, SearchRequest

if TYPE_CHECKING:
    from engine.library import Library

# field type (engine.filters) -> column kind; the scalar ones are exported by default
FIELD_KINDS = {"keyword": "string", "keywords": "strings", "integer": "integer", "float": "float",
               "datetime": "datetime", "bool": "bool"}  # fmt: skip
SCALAR_TYPES = ("keyword", "integer", "float", "datetime", "bool")
# payload fields one may export beside the filterable ones (library.fields()), with their types
EXTRA_FIELDS = {"sha256": "keyword"}
MAX_FIELDS = 100  # fields one export may ask for
BATCH = 256  # points read from the store per call
RANK_PREFIX = "rank_"  # rank_image, rank_text, ...: a hit's rank in each channel (empty: not found)
ADDED_ORDER = "added_order"  # a board export's column: the ad's addition number on the board


@dataclass
class Export:
    """A table to write: its columns, its rows (an iterator, consumed once) and what it is."""

    columns: list[Column]
    rows: Iterator[dict]
    what: str


def parse_fields(text: str | Sequence[str] | None) -> list[str] | None:
    """'a,b' (or a list of such) -> ['a', 'b']; None or nothing: the default fields."""
    if text is None:
        return None
    parts = [text] if isinstance(text, str) else list(text)
    names = [n.strip() for part in parts for n in part.split(",") if n.strip()]
    return names or None


def export_fields(library: Library, fields: Sequence[str] | None, taken: Sequence[str]) -> dict[str, str]:
    """The payload fields to export (name -> type): those asked for, or every scalar field the
    collection has (built-in filterable ones, EXTRA_FIELDS, metadata). ExportError for a field that is
    unknown, heavy, repeated, or named like one of the fixed columns `taken`."""
    known = {**EXTRA_FIELDS, **library.fields()}
    if fields is None:
        return {f: t for f, t in known.items() if t in SCALAR_TYPES and f not in taken}
    if len(fields) > MAX_FIELDS:
        raise ExportError(f"at most {MAX_FIELDS} fields per export, not {len(fields)}")
    for name in fields:
        if name in taken:
            raise ExportError(f"'{name}' is always exported (a fixed column): leave it out of the fields")
        if name in HEAVY_FIELDS or name not in known:
            raise ExportError(f"unknown field '{name}': fields one can export: {', '.join(sorted(known))}")
    if len(set(fields)) != len(fields):
        raise ExportError("a field is named twice")
    return {f: known[f] for f in fields}


def _columns(fixed: list[Column], fields: dict[str, str]) -> list[Column]:
    return fixed + [Column(name, FIELD_KINDS.get(kind, "string")) for name, kind in fields.items()]


def results_export(
    library: Library, request: SearchRequest, fields: Sequence[str] | None = None,
    image: Image.Image | None = None,
) -> Export:  # fmt: skip
    """A search as an export: a ranked query (text or image) gives its ranked list from the first hit
    to MAX_HITS; no query (filters only, as a browse) gives every matching image, in id order."""
    rank_names = [f"{RANK_PREFIX}{c}" for c in fused_names()]
    request.channel_weights()  # a bad weight is an error even where nothing is ranked
    clauses = library.payload_fields.parse_where(request.where)
    wording = split_query(request.q)
    if wording.clauses:
        library.payload_fields.text_indexed()
        clauses = [*clauses, *wording.clauses]
    if not wording.text.strip() and image is None:
        fixed = [Column("id", "string"), Column("paths", "strings"), Column("ocr_text", "string")]
        chosen = export_fields(library, fields, [c.name for c in fixed])
        rows = _browse_rows(library, clauses, chosen)
        return Export(_columns(fixed, chosen), rows, "every matching image")
    response = library.search(request.model_copy(update={"offset": 0}).deeper(MAX_HITS), image, False)
    extra = [f"{RANK_PREFIX}{c}" for c in response.channels if f"{RANK_PREFIX}{c}" not in rank_names]
    fixed = [Column("id", "string"), Column("rank", "integer"), Column("score", "float"),
             *(Column(n, "integer") for n in rank_names + extra), Column("paths", "strings"),
             Column("ocr_text", "string")]  # fmt: skip
    chosen = export_fields(library, fields, [c.name for c in fixed])
    what = f"the top {len(response.hits)} ranked hits (at most {MAX_HITS})"
    return Export(_columns(fixed, chosen), _hit_rows(library, response.hits, chosen), what)


def _hit_rows(library: Library, hits: list, fields: dict[str, str]) -> Iterator[dict]:
    """The ranked hits with their payload fields, read BATCH at a time."""
    for start in range(0, len(hits), BATCH):
        batch = hits[start : start + BATCH]
        payloads = library.store.retrieve([h.id for h in batch]) if fields else {}
        for hit in batch:
            payload = payloads.get(hit.id, {})
            row = {"id": hit.id, "rank": hit.rank, "score": hit.score, "paths": hit.paths,
                   "ocr_text": hit.ocr_text}  # fmt: skip
            row.update({f"{RANK_PREFIX}{c}": m.rank for c, m in hit.channels.items()})
            row.update({f: payload.get(f) for f in fields})
            yield row


def _browse_rows(library: Library, clauses: list, fields: dict[str, str]) -> Iterator[dict]:
    """Every image matching `clauses`, streamed from the store's filtered scroll."""
    wanted = ["paths", "ocr_text", *fields]
    for pid, payload in library.store.scroll(batch=BATCH, fields=wanted, where=clauses):
        yield {"id": pid, **{f: payload.get(f) for f in wanted}}


def board_export(library: Library, name: str, fields: Sequence[str] | None = None) -> Export:
    """Every ad on the board `name` (case does not count) as an export: id, added_order, paths,
    ocr_text and the payload `fields` (as a browse: every scalar field by default). Streamed through
    the store's filtered scroll with the board's filter, so in id order; `added_order` is the ad's
    addition number on the board (0 for the first ad put on it; numbers of ads taken off leave
    gaps): sorted by it, the rows are in the order `board export --zip` and `library.boards.ids`
    give. NotFound for an unknown board, BoardError for a bad name, ExportError for a bad field:
    all raised here, before the first row."""
    board = library.boards.resolve(name)
    fixed = [Column("id", "string"), Column(ADDED_ORDER, "integer"), Column("paths", "strings"),
             Column("ocr_text", "string")]  # fmt: skip
    chosen = export_fields(library, fields, [c.name for c in fixed])
    # the board name stays out of `what`: it may hold any letter, and `what` is also an HTTP header
    return Export(_columns(fixed, chosen), _board_rows(library, board, chosen), "every ad on the board")


def _board_rows(library: Library, board: str, fields: dict[str, str]) -> Iterator[dict]:
    """The board's ads with their addition number on it, streamed from the store's filtered scroll."""
    wanted = ["paths", "ocr_text", *fields]
    clauses = library.boards.clauses(board)
    for pid, payload in library.store.scroll(batch=BATCH, fields=[*wanted, ORDER_FIELD], where=clauses):
        order = payload.get(ORDER_FIELD)
        number = order.get(board) if isinstance(order, dict) else None
        added = number if isinstance(number, int) and not isinstance(number, bool) else None
        yield {"id": pid, ADDED_ORDER: added, **{f: payload.get(f) for f in wanted}}


def facets_export(library: Library, field: str, where: Sequence[str] = (), limit: int = 20) -> Export:
    """A field's value counts (library.facets) as an export: value, count."""
    counts = library.facets(field, where, limit)
    kind = FIELD_KINDS.get(counts["type"], "string")
    kind = "string" if kind == "strings" else kind  # a list field counts each of its values
    columns = [Column("value", kind), Column("count", "integer")]
    return Export(columns, iter(counts["values"]), f"{len(counts['values'])} values of {field}")
