"""Turning a user's question into a keyword query the index cannot choke on."""

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
        "do",
        "does",
        "did",
        "can",
    ]
)


def fts5_match_expression(query: str, max_terms: int = 32) -> str:
    """An FTS5 MATCH expression ORing the query's words, each quoted so that user
    text (quotes, operators, column filters) is never parsed as syntax."""
    words = [w.lower() for w in _WORD.findall(query)]
    terms = [w for w in dict.fromkeys(words) if w not in _STOPWORDS] or list(dict.fromkeys(words))
    return " OR ".join(f'"{t}"' for t in terms[:max_terms])
