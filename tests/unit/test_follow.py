"""Polling a Redshift statement: soon at first, further apart for long statements."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st
from myshift.steps import FAST_POLLS, MAX_POLL_SECONDS, next_wait


@given(st.integers(min_value=1, max_value=300))  # Settings.poll_seconds' range
def test_waits_start_at_poll_seconds_and_grow_to_the_cap(poll_seconds: int) -> None:
    waits = [next_wait(polls, poll_seconds) for polls in range(500)]
    assert waits[:FAST_POLLS] == [poll_seconds] * FAST_POLLS
    assert all(a <= b for a, b in itertools.pairwise(waits))  # never sooner
    assert waits[-1] == max(poll_seconds, MAX_POLL_SECONDS)  # the cap is reached, kept


def test_a_day_long_statement_is_polled_a_few_hundred_times_per_hour() -> None:
    polls, waited = 0, 0
    while waited < 24 * 3600:
        waited += next_wait(polls, 5)
        polls += 1
    assert polls < 1_500  # 9 history events a poll: well inside 25,000 per table


def test_the_cli_polls_a_run_soon_after_its_start_then_every_poll_seconds() -> None:
    from myshift.cli.sync import FIRST_POLL_SECONDS, poll_intervals

    sleeps = list(itertools.islice(poll_intervals(1.0), 30))
    assert sleeps[0] == FIRST_POLL_SECONDS  # a run with nothing new is seen to end soon
    assert all(a <= b for a, b in itertools.pairwise(sleeps))
    assert sleeps[-1] == 1.0 and max(sleeps) == 1.0  # then no more polls than before
    assert next(poll_intervals(0.05)) == 0.05  # never above the interval asked for
