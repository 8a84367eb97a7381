from ingest.store.keywords import fts5_match_expression


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
