"""How fast a run talks to Twilio: an adaptive request window and an optional segment rate.

Twilio limits concurrent API requests per account (no published number; about 100 is the
usual figure, and other tools share the account) and answers 429/20429 above it. A run
configured for more than the account allows must not spend its time bouncing off that
limit, so the window of requests in flight adapts AIMD-style, as TCP does:

- slow start: the window begins small and grows by one per answered request (doubling
  per round trip) until the first 429;
- congestion avoidance: after that it grows by one per window's worth of answers, and
  each 429 shrinks it to the number of requests that were in flight when the rejected one
  was sent, times BACKOFF_FACTOR: close under the server's limit, not at half of it;
- careful probing: the refused request shows where the limit lies (one below the load it
  was sent into); the window regrows to there at the usual pace but probes past it
  PROBE_SLOWDOWN times slower, so a steady limit costs a 429 only every few hundred
  requests rather than every few dozen, and a limit that rises is still found;
- one decrease per round: 429s for requests sent before the last decrease say nothing new
  (they were sent into the old, larger window), so they do not shrink it again.

Sender throughput (MPS) is counted in segments: a US long code sends 1 per second and
Twilio queues the rest, up to about ten hours' worth, then answers 21611. A connection
may therefore cap segments per second, which SegmentRate spreads evenly over time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from smslink.domain.models import Connection

#: Where the window starts: small enough that a low server limit costs few 429s (on an
#: account shared with other tools, a burst of them hits their requests too), and slow
#: start reaches any higher limit within a handful of round trips. Starting at the
#: ceiling would send a 10,000-message run 1-2% faster (~0.1% at 100,000; bench/RESULTS.md
#: section 23), and every `smslink send` pays this start; kept small all the same. A
#: process that sends run after run on one event loop (`serve` sending itself, a worker
#: without Redis) goes on from the window its last run left, and a window shared in Redis
#: is kept for an hour of idleness (limits/redis.py).
INITIAL_WINDOW = 8
#: A 429 sets the window to this share of what was in flight when it was sent.
BACKOFF_FACTOR = 0.9
#: How much slower the window grows past the last limit it ran into.
PROBE_SLOWDOWN = 8


@dataclass(frozen=True, slots=True)
class Ticket:
    """One admitted request: the window generation and load it was sent into."""

    generation: int
    in_flight: int


class AdaptiveWindow:
    """An AIMD limit on requests in flight, between 1 and the connection's concurrency.

    Implements the client's RequestGate: `acquire` before each HTTP request (retries
    included), `release` with whether Twilio answered 429.
    """

    def __init__(self, ceiling: int, initial: int = INITIAL_WINDOW) -> None:
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self.ceiling = ceiling
        self._window = float(min(ceiling, max(1, initial)))
        self._slow_start = True
        self._generation = 0  # bumped by every decrease
        self._limit_seen: float | None = None  # where the last 429 put the server's limit
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: Requests answered 429, and decreases made: for progress and benchmarks.
        self.throttled = 0
        self.decreases = 0

    @property
    def window(self) -> int:
        """Requests that may be in flight right now."""
        return max(1, int(self._window))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def acquire(self) -> Ticket:
        """Wait (first come, first served) for room in the window; the ticket goes back
        to `release`."""
        if self._in_flight >= self.window or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif not waiter.cancelled():
                    self._in_flight -= 1  # admitted just as it was cancelled
                    self._wake()
                raise
        else:
            self._in_flight += 1
        return Ticket(self._generation, self._in_flight)

    def release(self, ticket: Ticket, *, throttled: bool, answered: bool = True) -> None:
        """Give the slot back and learn from the answer; a request that got none (withheld,
        connection lost) teaches nothing, so the window stays as it is."""
        self._in_flight -= 1
        if answered:
            self._learn(ticket, throttled)
        self._wake()

    def _learn(self, ticket: Ticket, throttled: bool) -> None:
        if throttled:
            self.throttled += 1
            if ticket.generation == self._generation:  # sent into the current window
                self._decrease(ticket.in_flight)
        elif self._slow_start:
            self._window = min(self.ceiling, self._window + 1)
        else:
            step = 1 / self._window
            if self._limit_seen is not None and self._window >= self._limit_seen:
                step /= PROBE_SLOWDOWN
            self._window = min(self.ceiling, self._window + step)

    def _decrease(self, load: int) -> None:
        self._slow_start = False
        self._generation += 1
        self.decreases += 1
        self._limit_seen = max(1, load - 1)
        self._window = max(1.0, min(self._window, load) * BACKOFF_FACTOR)

    def _wake(self) -> None:
        """Admit waiters while the window has room; each is counted in flight at once,
        so a request arriving meanwhile cannot overtake them."""
        while self._waiters and self._in_flight < self.window:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)


class SegmentRate:
    """Spreads sends so that at most `per_second` segments start each second.

    Each send books the next free moment for its segments and sleeps until then, so
    concurrent workers line up without a burst (Twilio's per-sender queue stays empty).
    """

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.per_second = per_second
        self._clock = clock
        self._next_free = 0.0

    async def take(self, segments: int) -> None:
        """Wait until `segments` more segments may be sent."""
        now = self._clock()
        start = max(now, self._next_free)
        self._next_free = start + max(1, segments) / self.per_second
        if start > now:
            await asyncio.sleep(start - now)


class Window(Protocol):
    """A request window as a run uses it: the client's RequestGate, and what it learned.
    AdaptiveWindow (one process) or SharedWindow (every worker, engine/shared_pacing.py)."""

    throttled: int

    @property
    def window(self) -> int: ...

    async def acquire(self) -> Any: ...

    def release(self, ticket: Any, *, throttled: bool, answered: bool = True) -> None: ...


class SegmentPacer(Protocol):
    """A sender's segment cap: SegmentRate (one process) or SharedSegmentRate."""

    async def take(self, segments: int) -> None: ...


class Pacing(Protocol):
    """Hands each run the window of its connection's account and its sender's segment
    cap: ConnectionPacing within one process, SharedPacing across workers."""

    def window(self, connection: Connection) -> Window: ...

    def segment_rate(self, connection: Connection) -> SegmentPacer | None: ...


class ConnectionPacing:
    """One adaptive window per Twilio account and one segment rate per sender, shared by
    every run this process sends at once: a journey's trickle and a 100,000-record
    campaign on the same connection take turns in one window (first come, first served),
    so neither starves the other and together they stay under what the account allows,
    as the account's limit counts them together.

    An account is its base URL and Account SID (two connections of one account share its
    limit); a sender is its From number or Messaging Service with its cap. The window's
    ceiling is the first run's connection concurrency. Windows are tied to one event loop
    (their waiters are its futures): on another loop (a command that runs a second
    `asyncio.run`) the registry starts afresh.
    """

    def __init__(self, *, ceiling: int | None = None) -> None:
        #: At most this many requests in flight per account from this process (a worker's
        #: `--concurrency`), whatever the connection allows.
        self._ceiling = ceiling
        self._loop: asyncio.AbstractEventLoop | None = None
        self._windows: dict[tuple[str, str], AdaptiveWindow] = {}
        self._rates: dict[tuple[str, str, float], SegmentRate] = {}

    def window(self, connection: Connection) -> AdaptiveWindow:
        """The window of `connection`'s account (made on first use)."""
        self._same_loop()
        key = (connection.base_url, connection.account_sid)
        if key not in self._windows:
            ceiling = connection.concurrency
            if self._ceiling is not None:
                ceiling = min(ceiling, self._ceiling)
            self._windows[key] = AdaptiveWindow(ceiling)
        return self._windows[key]

    def segment_rate(self, connection: Connection) -> SegmentRate | None:
        """The segment rate of `connection`'s sender, or None when it has no cap."""
        cap = connection.max_segments_per_second
        if not cap:
            return None
        key = (connection.account_sid, connection.sender, cap)
        if key not in self._rates:
            self._rates[key] = SegmentRate(cap)
        return self._rates[key]

    def _same_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._windows.clear()
