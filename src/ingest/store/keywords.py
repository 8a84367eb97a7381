"""Turning a user's question into a keyword query the index cannot choke on (pure)."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
# Words so common they only add noise to an OR query.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
    ]
)


def query_terms(query: str, max_terms: int = 32) -> list[str]:
    """The query's distinct words, lower-cased, stopwords dropped unless that leaves none.
    Only word characters survive, so no term can carry index query syntax."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))
    return ([w for w in words if w not in _STOPWORDS] or words)[:max_terms]


def fts5_match_expression(query: str, max_terms: int = 32) -> str:
    """An FTS5 MATCH expression ORing the query's words, each quoted."""
    return " OR ".join(f'"{t}"' for t in query_terms(query, max_terms))


def rarest_terms(estimates: list[tuple[str, float]], budget: int) -> list[str]:
    """The rarest terms, from (term, estimated matches), whose matches together
    are expected to fit in `budget`; at least the rarest one.

    Matching on these alone is what BM25's IDF would favour anyway, and keeps the
    rows that must be ranked bounded however common the other words are."""
    chosen: list[str] = []
    expected = 0.0
    for term, matches in sorted(estimates, key=lambda e: e[1]):
        if chosen and expected + matches > budget:
            break
        chosen.append(term)
        expected += matches
    return chosen
