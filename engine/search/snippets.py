"""Query terms and the OCR line that shows why a hit matched (also what the pages highlight)."""

from __future__ import annotations

import re

from engine.models.text import english_stopwords

_TOKEN = re.compile(r"[A-Za-z0-9]+")
SNIPPET_CHARS = 160


def query_terms(text: str) -> list[str]:
    """Lowercased word tokens of a query, stopwords left out (for highlighting and snippets)."""
    words = (t.lower() for t in _TOKEN.findall(text or ""))
    return list(dict.fromkeys(w for w in words if w not in english_stopwords()))


def term_matches(term: str, word: str) -> bool:
    """Exact, or (4+ letters) one inside the other: "burger" ~ "cheeseburger", "safe" ~ "safety"."""
    return word == term or (min(len(term), len(word)) >= 4 and (term in word or word in term))


def best_snippet(ocr_text: str, terms: list[str]) -> tuple[str, list[str]]:
    """The OCR line sharing the most query terms (first line if none) and the terms it matched."""
    lines = [line for line in (ocr_text or "").splitlines() if line.strip()]
    if not lines:
        return "", []
    terms = [t for t in terms if len(t) > 1]
    best, best_terms = lines[0], []
    for line in lines:
        matched = _matched_terms(terms, line.lower())
        if len(matched) > len(best_terms):
            best, best_terms = line, matched
    return best[:SNIPPET_CHARS], best_terms


def _matched_terms(terms: list[str], line: str) -> list[str]:
    """The terms that `term_matches` some word of a lower-cased line. A 4+ letter term found in the
    line lies inside one of its words (terms are made of word characters), so the words are split
    out only for the other cases."""
    matched, words = [], None
    for term in terms:
        if len(term) >= 4 and term in line:
            matched.append(term)
            continue
        if words is None:
            words = set(_TOKEN.findall(line))
            long_words = [w for w in words if len(w) >= 4]
        if term in words or (len(term) >= 4 and any(w in term for w in long_words)):
            matched.append(term)
    return matched
