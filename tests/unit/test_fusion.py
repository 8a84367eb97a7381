from ingest.query.fusion import reciprocal_rank_fusion


def test_item_ranked_high_in_both_lists_wins() -> None:
    fused = reciprocal_rank_fusion([(["a", "b", "c"], 1.0), (["b", "a", "d"], 1.0)], k=60)
    assert [item for item, _ in fused][:2] in (["a", "b"], ["b", "a"])
    assert {item for item, _ in fused} == {"a", "b", "c", "d"}


def test_weights_tilt_the_order() -> None:
    rankings = [(["v1", "v2"], 1.0), (["k1", "k2"], 3.0)]
    fused = [item for item, _ in reciprocal_rank_fusion(rankings, k=60)]
    assert fused == ["k1", "k2", "v1", "v2"]


def test_score_is_sum_of_reciprocal_ranks() -> None:
    fused = dict(reciprocal_rank_fusion([(["x"], 2.0), (["y", "x"], 1.0)], k=10))
    assert fused["x"] == 2.0 / 11 + 1.0 / 12
    assert fused["y"] == 1.0 / 11


def test_empty_rankings_give_nothing() -> None:
    assert reciprocal_rank_fusion([([], 1.0)]) == []
