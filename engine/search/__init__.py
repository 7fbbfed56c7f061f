"""Search: a query embedded once per channel, one Qdrant batch (a prefetch per channel fused with
RRF, each channel alone for the explanation), browse by an indexed field, feedback and diversity
(searcher.py); the request every face builds, each parameter's limit declared once (request.py);
the collection's fields, filters and facets (fields.py); the answer's records (results.py); query
terms and snippets (snippets.py)."""

from engine.errors import SearchError
from engine.search.request import SearchRequest, parse_weights
from engine.search.results import ChannelMatch, Hit, SearchResponse
from engine.search.searcher import IMAGE_OFF_NOTE, Searcher
from engine.search.snippets import best_snippet, query_terms, term_matches

__all__ = [
    "IMAGE_OFF_NOTE", "ChannelMatch", "Hit", "SearchError", "SearchRequest", "SearchResponse", "Searcher",
    "best_snippet", "parse_weights", "query_terms", "term_matches",
]  # fmt: skip
