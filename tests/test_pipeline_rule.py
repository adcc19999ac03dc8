"""Whether the enrichers keep up (rules.pipeline, pure)."""

from __future__ import annotations

from rules.pipeline import stalled_since_ms


def test_only_a_post_waiting_past_the_limit_is_a_stall() -> None:
    assert stalled_since_ms(10_000, [], 1_000) is None
    assert stalled_since_ms(10_000, [None, None], 1_000) is None
    assert stalled_since_ms(10_000, [9_000], 1_000) is None  # exactly the limit: not yet
    assert stalled_since_ms(10_000, [8_999], 1_000) == 8_999
    # The oldest of those waiting says since when.
    assert stalled_since_ms(10_000, [9_500, None, 3_000], 1_000) == 3_000
