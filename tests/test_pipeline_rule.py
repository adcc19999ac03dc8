"""Whether the enrichers keep up (rules.pipeline, pure)."""

from __future__ import annotations

from rules.pipeline import stalled_since_ms


def test_a_post_waiting_past_the_limit_with_no_enricher_trying_is_a_stall() -> None:
    assert stalled_since_ms(10_000, None, None, 1_000) is None  # nothing waits
    assert stalled_since_ms(10_000, 9_000, None, 1_000) is None  # exactly the limit
    assert stalled_since_ms(10_000, 8_999, None, 1_000) == 8_999  # no enricher ever
    # One tried within the limit: at work (behind, or retrying a failing post).
    assert stalled_since_ms(10_000, 3_000, 9_500, 1_000) is None


def test_since_is_when_posts_stopped_flowing() -> None:
    # Stopped at 5 s, a post accepted at 7 s: not live since 7 s, not 5.
    assert stalled_since_ms(10_000, 7_000, 5_000, 1_000) == 7_000
    # A post pending since before the stop dates from the enrichers' last try (the cold
    # try's "since" came 12 minutes early from an entry's own id).
    assert stalled_since_ms(10_000, 1_000, 5_000, 1_000) == 5_000
    # Stalled only once that is older than the limit.
    assert stalled_since_ms(10_000, 1_000, 9_500, 1_000) is None
