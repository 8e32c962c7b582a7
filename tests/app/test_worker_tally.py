"""A worker's tally of its jobs (its row in `smslink workers`) with jobs that overlap."""

from __future__ import annotations

from smslink.app.worker import _Tally, _Working
from smslink.engine import RunCounters


def test_two_jobs_with_equal_counters_each_leave_the_tally_with_their_own() -> None:
    """Two parts of one run start together: their counters are equal (both at zero) until
    one posts. The first to end must take its own counters out, not the other's, or the
    second job fails at its end and its posts are counted twice."""
    tally = _Tally()
    first, second = RunCounters(), RunCounters()
    with _Working(tally, 7, first):
        with _Working(tally, 7, second):
            assert tally.runs == {7: 2}
        # `second` ended while equal to `first`: `first` is still the one in hand.
        assert tally.live == [first] and tally.live[0] is first
        first.posted = 5
        assert tally.all_posted() == 5
    assert tally.live == [] and tally.runs == {}
    assert tally.all_posted() == 5


def test_jobs_ending_out_of_order_count_each_post_once() -> None:
    tally = _Tally()
    a, b, c = RunCounters(), RunCounters(), RunCounters()
    jobs = [_Working(tally, 1, a), _Working(tally, 1, b), _Working(tally, 2, c)]
    for job in jobs:
        job.__enter__()
    a.posted, b.posted, c.posted = 3, 3, 4  # a and b equal again
    jobs[1].__exit__(None, None, None)
    assert [x is b for x in tally.live] == [False, False]
    jobs[0].__exit__(None, None, None)
    jobs[2].__exit__(None, None, None)
    assert tally.posted == 10 and tally.all_posted() == 10 and tally.runs == {}
