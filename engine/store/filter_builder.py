"""The one filter builder of every backend: parsed `--where` clauses (engine.filters) -> a Qdrant
filter, built from the backend's `FilterVocabulary` (its constructors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.filters import Clause

# Built-in fields answered by a vector's presence rather than a payload match.
VECTOR_FLAGS = {"has_text": "text"}
RANGE_BOUND = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}


@dataclass(frozen=True)
class FilterVocabulary:
    """How one backend spells a filter's parts. Both Qdrant APIs take the same keyword names
    (FieldCondition(key=, match= | range=), MatchValue(value=), MatchAny(any=), MatchPhrase(phrase=),
    MatchText(text=), range(gte=, lte=, ...), Filter(must=, must_not=, should=)); `of` fills in the
    classes they share, the backend names the rest."""

    field: Callable[..., object]
    match_value: Callable[..., object]
    match_any: Callable[..., object]
    match_phrase: Callable[..., object]
    match_text: Callable[..., object]
    number_range: Callable[..., object]
    datetime_range: Callable[..., object]
    has_vector: Callable[[str], object]  # the point has this named vector
    filter: Callable[..., object]

    @classmethod
    def of(cls, api, number_range, datetime_range, has_vector) -> FilterVocabulary:
        """The vocabulary of `api` (the qdrant_edge module or qdrant_client.models)."""
        return cls(
            field=api.FieldCondition,
            match_value=api.MatchValue,
            match_any=api.MatchAny,
            match_phrase=api.MatchPhrase,
            match_text=api.MatchText,
            number_range=number_range,
            datetime_range=datetime_range,
            has_vector=has_vector,
            filter=api.Filter,
        )


def build_filter(clauses: Sequence[Clause], vocab: FilterVocabulary, with_vector: str | None = None):
    """Clauses (all must hold), and the point having `with_vector` when given -> one backend filter,
    or None when there is nothing to require."""
    if not clauses and not with_vector:
        return None
    must, must_not = ([vocab.has_vector(with_vector)] if with_vector else []), []
    for clause in clauses:
        condition, negate = _condition(clause, vocab)
        (must_not if negate else must).append(condition)
    return vocab.filter(must=must or None, must_not=must_not or None)


def _condition(clause: Clause, vocab: FilterVocabulary) -> tuple[object, bool]:
    """One clause -> (condition, whether the point must NOT match it)."""
    negate = clause.op in ("!=", "not in")
    key, value = clause.field, clause.value
    if clause.op == "phrase":
        return vocab.field(key=key, match=vocab.match_phrase(phrase=value)), False
    if clause.op == "without":
        return vocab.field(key=key, match=vocab.match_text(text=value)), True
    if key in VECTOR_FLAGS:  # has_text=true: the point has a text vector
        return vocab.has_vector(VECTOR_FLAGS[key]), negate != (not value)
    if clause.op in ("in", "not in"):
        if any(isinstance(v, float | datetime) for v in value):  # exact values the store cannot match
            return vocab.filter(should=[_exact(key, v, vocab) for v in value]), negate
        return vocab.field(key=key, match=vocab.match_any(any=[_plain(v) for v in value])), negate
    if clause.op in RANGE_BOUND:
        return _range(key, {RANGE_BOUND[clause.op]: value}, vocab), False
    if isinstance(value, float | datetime):
        return _exact(key, value, vocab), negate
    return vocab.field(key=key, match=vocab.match_value(value=value)), negate


def _exact(key: str, value: object, vocab: FilterVocabulary) -> object:
    """= on a float or a date-time, as the closed range [value, value]: Qdrant matches exact values
    of keywords and integers only."""
    return _range(key, {"gte": value, "lte": value}, vocab)


def _range(key: str, bounds: dict[str, object], vocab: FilterVocabulary) -> object:
    """A range condition; date-time bounds (all of one kind) as ISO text in a date-time range."""
    is_datetime = any(isinstance(v, datetime) for v in bounds.values())
    kind = vocab.datetime_range if is_datetime else vocab.number_range
    return vocab.field(key=key, range=kind(**{k: _plain(v) for k, v in bounds.items()}))


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value
