"""One SearchRequest answered: its filter clauses checked against the collection's fields, the
query's "phrases" and -words turned into full-text clauses, then a search or (no query, no image)
a browse."""

from __future__ import annotations

from PIL import Image

from engine.filters import split_query
from engine.search.browse import browse
from engine.search.fields import CollectionFields
from engine.search.request import SearchRequest
from engine.search.results import SearchResponse
from engine.search.searcher import Searcher


def answer(
    searcher: Searcher, fields: CollectionFields, request: SearchRequest, image: Image.Image | None = None,
    snippets: bool = True,
) -> SearchResponse:  # fmt: skip
    """Search by text (`request.q`) and/or image among the images matching `request.where`; no query
    and no image browses them in `sort` order. Without `snippets` the hits carry no matched OCR line."""
    weights = request.channel_weights()
    clauses = fields.parse_where(request.where)
    query, wording = request.q, split_query(request.q)
    if wording.clauses:
        fields.text_indexed()
        query, clauses = wording.text, [*clauses, *wording.clauses]
    if not query.strip() and image is None:
        fields.sortable(request.sort)
        return browse(searcher.store, clauses, request.sort, request.descending, request.k, request.offset)
    return searcher.search(
        query, image=image, mode=request.mode, k=request.k, offset=request.offset, weights=weights,
        snippets=snippets, where=clauses, diverse=request.diverse, positive=request.positive,
        negative=request.negative, fusion=request.fusion,
    )  # fmt: skip
