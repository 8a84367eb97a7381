from ingest.store.keywords import fts5_match_expression, rarest_terms


def test_words_are_quoted_and_ored_without_stopwords() -> None:
    assert fts5_match_expression("How do I rotate the keys?") == '"rotate" OR "keys"'


def test_syntax_characters_never_reach_the_index() -> None:
    expr = fts5_match_expression('title:"x" AND NEAR(y z) * -w')
    assert expr == '"title" OR "x" OR "near" OR "y" OR "z" OR "w"'


def test_only_stopwords_still_searches_them() -> None:
    assert fts5_match_expression("the") == '"the"'


def test_no_words_gives_empty_expression() -> None:
    assert fts5_match_expression("?!* ") == ""


def test_repeated_words_appear_once() -> None:
    assert fts5_match_expression("keys KEYS keys") == '"keys"'


def test_rarest_terms_drop_the_commonest_beyond_the_budget() -> None:
    estimates = [("harbour", 90_000.0), ("zanzibar", 3.0), ("storm", 400.0)]
    assert rarest_terms(estimates, budget=1000) == ["zanzibar", "storm"]


def test_rarest_terms_keep_the_rarest_even_over_budget() -> None:
    estimates = [("harbour", 90_000.0), ("cranes", 80_000.0)]
    assert rarest_terms(estimates, budget=1000) == ["cranes"]


def test_rarest_terms_take_every_word_without_statistics() -> None:
    estimates = [("harbour", 0.0), ("cranes", 0.0)]
    assert rarest_terms(estimates, budget=1000) == ["harbour", "cranes"]
