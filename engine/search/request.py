"""One search request: every search parameter, its default and its limit, declared once here and
used by every face (the CLI, the JSON API's GET and POST routes, the pages) and by `Library.search`."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field

from engine.channels import fused_names, modes
from engine.errors import SearchError
from engine.settings import MAX_WEIGHT
from engine.settings.search import FUSIONS

MAX_QUERY_CHARS = 2000  # a query as it arrives; the server's max_query_chars caps it once stripped
PAGE_HITS = 100  # hits one HTTP request (API or page) may ask for
MAX_HITS = 1000  # hits a terminal listing or the engine's own rankings (evaluate, tune) may ask for
MAX_OFFSET = 10_000
MAX_CLAUSES = 20
MAX_CLAUSE_CHARS = 500  # one filter clause
MAX_EXAMPLES = 20  # feedback ids: positive, and negative, each
MAX_WEIGHTS_CHARS = 200
MAX_SORT_CHARS = 64
ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
DEFAULT_SORT = "ingested_at"

Mode = Literal[tuple(modes())]  # the modes of the registered channels, as a type requests validate
Order = Literal["desc", "asc"]
Fusion = Literal[FUSIONS]  # how the channels are weighed (engine.search.fusion)
ClauseText = Annotated[str, Field(max_length=MAX_CLAUSE_CHARS)]
ImageIdText = Annotated[str, Field(pattern=ID_PATTERN)]


class SearchRequest(BaseModel):
    """A search (or, without `q`, a browse) as a JSON body."""

    # The docstring above is the API schema's description of the JSON body: it stays as published.
    model_config = ConfigDict(extra="forbid")

    q: str = Field("", max_length=MAX_QUERY_CHARS)
    mode: Mode = "hybrid"
    k: int = Field(10, ge=1, le=PAGE_HITS)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    weights: str | None = Field(None, max_length=MAX_WEIGHTS_CHARS, description="e.g. image=1,text=2")
    fusion: Fusion | None = Field(
        None, description="fixed or adaptive channel weights (default: the server's ADSEARCH_FUSION)"
    )
    where: list[ClauseText] = Field(default_factory=list, max_length=MAX_CLAUSES)
    sort: str = Field(DEFAULT_SORT, max_length=MAX_SORT_CHARS)
    order: Order = "desc"
    diverse: bool = False
    positive: list[ImageIdText] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    negative: list[ImageIdText] = Field(default_factory=list, max_length=MAX_EXAMPLES)

    @property
    def descending(self) -> bool:
        return self.order == "desc"

    def deeper(self, k: int) -> SearchRequest:
        """The same request for `k` hits, beyond an HTTP page (a terminal listing, an evaluation
        run): 1..MAX_HITS, else SearchError."""
        if not 1 <= k <= MAX_HITS:
            raise SearchError(f"k must be between 1 and {MAX_HITS}, not {k}")
        return self.model_copy(update={"k": k})

    def channel_weights(self) -> dict[str, float]:
        """`weights` as {channel: weight} (parse_weights); SearchError if bad."""
        return parse_weights(self.weights)


def limits_of(name: str) -> dict[str, Any]:
    """The limits SearchRequest declares for one parameter, as keyword arguments of FastAPI's
    Query/Form (ge, le, max_length, ...): the HTTP faces take them from here."""
    names = {annotated_types.Ge: "ge", annotated_types.Le: "le", annotated_types.MinLen: "min_length",
             annotated_types.MaxLen: "max_length"}  # fmt: skip
    found = {}
    for item in SearchRequest.model_fields[name].metadata:
        for kind, keyword in names.items():
            if isinstance(item, kind):
                found[keyword] = getattr(item, keyword)  # Ge(ge=1).ge, MaxLen(max_length=20).max_length
    return found


def parse_weights(text: str | None) -> dict[str, float]:
    """'image=1,text=2,keywords=0.5' -> {channel: weight}; unknown or repeated channels, numbers that are
    not finite or outside 0..MAX_WEIGHT, and every channel at 0, raise SearchError."""
    names = fused_names()
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise SearchError(f"bad weight '{part}': use channel=number with channel in {', '.join(names)}")
        if name in weights:
            raise SearchError(f"bad weight '{part}': channel {name} is given twice")
        try:
            weight = float(value)
        except ValueError:
            raise SearchError(f"bad weight '{part}': '{value.strip()}' is not a number") from None
        if not (math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT):
            raise SearchError(f"bad weight '{part}': weights are finite numbers from 0 to {MAX_WEIGHT:g}")
        weights[name] = weight
    if len(weights) == len(names) and not any(weights.values()):
        raise SearchError("bad weights: every channel is 0; give at least one a weight > 0")
    return weights
