"""Why a run stops before it is done; each message says what happened, the remedy what to do."""

from __future__ import annotations

from smslink.domain.errors import Halted, say


class RunHalted(Halted):
    """The connection is wrong, Twilio is unreachable, or the audience cannot be read on:
    every further record would fail, so the run stops (resumable)."""


class LeaseLost(RunHalted):
    """Another process may own the run now: stop, and write nothing more about it."""


def lease_lost(run_id: int) -> LeaseLost:
    return LeaseLost(
        say(
            "this process lost its hold on run %(run)s (it was paused, or the database was "
            "unreachable, for too long); another process may be working on it now, so this "
            "one stopped",
            run=str(run_id),
        )
    )
