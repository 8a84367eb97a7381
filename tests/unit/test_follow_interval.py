"""How often `ingest add` reads the status of the jobs it follows."""

from __future__ import annotations

from ingest.cli.watch import IDS_READ_PER_S, read_interval


def test_a_small_run_is_read_at_the_floor_interval() -> None:
    assert read_interval(0, 0.1) == 0.1
    assert read_interval(50, 0.1) == 0.1
    assert read_interval(50, 1.0) == 1.0


def test_a_large_run_is_read_less_often_in_proportion_to_its_size() -> None:
    # Reading N ids costs in proportion to N: the interval grows with N, so the
    # ids read per second stay bounded however large the run.
    for pending in (10_000, 50_000, 200_000):
        interval = read_interval(pending, 0.1)
        assert interval > 0.1
        assert pending / interval <= IDS_READ_PER_S
