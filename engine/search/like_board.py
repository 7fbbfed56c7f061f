""" "More like this board": one recommend query per channel of the mode, with the stored vectors of
the board's ads as positives (Qdrant's best-score strategy: a candidate scores by its nearest
example), the channels fused as every search is; the board's own ads are left out by a filter."""

from __future__ import annotations

from collections.abc import Sequence

from engine.errors import SearchError
from engine.filters import Clause
from engine.schema import BOARDS_FIELD
from engine.search.request import MAX_EXAMPLES
from engine.search.results import SearchResponse
from engine.search.searcher import Searcher
from engine.store import ChannelQuery


def like_board(
    searcher: Searcher, board: str, ids: Sequence[str], mode: str = "hybrid", k: int = 10,
    where: Sequence[Clause] = (),
) -> SearchResponse:  # fmt: skip
    """Images like the ads of `board` (`ids`: its ads, oldest first), among those matching `where`
    and not on the board. A board of more than MAX_EXAMPLES ads is represented by the most recently
    added ones, as a note says."""
    if not ids:
        raise SearchError(f"board {board!r} has no ads yet: add some first")
    notes: list[str] = []
    examples = list(ids)[-MAX_EXAMPLES:]
    if len(ids) > len(examples):
        notes.append(
            f"board {board!r} has {len(ids)} ads: the {len(examples)} most recently added are the examples"
        )
    channels = searcher.channels_for(mode, notes)
    stored = [v for v in map(searcher.store.vectors, examples) if v is not None]
    queries = []
    for name in channels:
        vectors = [v[name] for v in stored if name in v]
        if vectors:  # one example: a nearest query; more: a recommend query over all of them
            queries.append(ChannelQuery(name, vectors[0], positives=tuple(vectors[1:])))
    if not queries:
        raise SearchError(f"the ads of board {board!r} have no vectors for mode '{mode}'")
    outside = [*where, Clause(BOARDS_FIELD, "!=", board)]
    response = searcher.recommend(queries, k, outside, terms=[])
    return SearchResponse(None, mode, response.channels, response.hits, notes, response.timings_ms)
