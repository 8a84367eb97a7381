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
