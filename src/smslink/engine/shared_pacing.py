"""Pacing across every worker process: the request window and segment rate, kept together.

engine/pacing.py paces one process: its AdaptiveWindow learns how many requests Twilio
lets one account have in flight, and its SegmentRate spaces a sender's segments. Several
worker processes (on several machines) sending for the same account would each learn and
fill the limit on their own, together exceeding it N times over; each rate would allow its
cap per process. Here the same rules hold for all of them at once: the state lives in a
shared backend (`PacingBackend`; Redis in `smslink.limits.redis`), the engine keeps the
rules and imports no backend.

- `SharedWindow` is a drop-in for AdaptiveWindow as the client's RequestGate. Its window,
  generation, slow start, limit seen and the slots in flight are the backend's; each
  acquire and each release is one atomic backend operation carrying out the AIMD rules
  of AdaptiveWindow with pacing.py's constants (slow start, a 429 shrinks the window to
  the load it was sent into times BACKOFF_FACTOR, once per generation, careful probing
  past the limit seen). A 429 seen by one process therefore shrinks the window of all.
- Each admitted request holds a slot that expires `hold_s` after it was last renewed: a
  process renews the slots it holds, so a process killed mid-request (SIGKILL, a lost
  machine) gives its slots back within `hold_s` and never shrinks the account for good.
- When the window is full, a process polls: short sleeps with jitter that grow while it
  stays full, cut short when one of its own requests ends. Only one task per process polls
  (the others queue behind it, first come first served within the process), so polling
  costs one backend operation per process per interval, whatever the number of tasks.
  Across processes the order is not first come, first served.
- `SharedSegmentRate` books each send's moment in the backend, so N processes together
  start at most `per_second` segments a second, spread evenly.
- `SharedPacing` hands them out keyed as ConnectionPacing does.

Every clock is the backend's, so machines whose clocks disagree share one timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from smslink.domain.models import Connection
from smslink.engine.pacing import BACKOFF_FACTOR, INITIAL_WINDOW, PROBE_SLOWDOWN
from smslink.waiting import wait_until

log = logging.getLogger(__name__)

#: How long a slot outlives its last renewal: the longest a killed process's requests keep
#: their place in the window. A live process renews every third of it.
HOLD_S = 30.0
#: First and longest pause between tries while the window is full (each with jitter).
POLL_MIN_S = 0.005
POLL_MAX_S = 0.05


class WindowState(Protocol):
    """The shared window as one acquire or release left it."""

    @property
    def admitted(self) -> bool:
        """For an acquire: whether the slot was taken (False: the window was full)."""
        ...

    @property
    def in_flight(self) -> int:
        """Slots held by every process, this one's new slot included."""
        ...

    @property
    def generation(self) -> int:
        """Bumped by each decrease: a ticket of an older generation shrinks nothing."""
        ...

    @property
    def window(self) -> float:
        """The window (a float: congestion avoidance grows it by fractions)."""
        ...

    @property
    def version(self) -> int:
        """Grows with every change: of two answers, the one with the higher version is
        the newer state (answers to concurrent calls arrive in any order)."""
        ...

    @property
    def decreased(self) -> bool:
        """For a release: whether this release shrank the window."""
        ...


class PacingBackend(Protocol):
    """Where the shared pacing state lives; each operation is atomic on the backend and
    reads the backend's own clock. Failures raise `StorageFailed` (the domain's), so a
    run stops as on a database failure, resumable."""

    async def reserve(self, key: str, segments: int, per_second: float) -> float:
        """Book the next free moment for `segments` (at least 1) at `per_second` and return
        the seconds until it (0 when it is now)."""
        ...

    async def acquire_slot(
        self, key: str, slot: str, *, ceiling: int, initial: int, hold_s: float
    ) -> WindowState:
        """Drop expired slots, then take `slot` (expiring in `hold_s`) if fewer than the
        window (at most `ceiling`) are held. A window seen for the first time starts at
        `initial`, in slow start."""
        ...

    async def release_slot(
        self,
        key: str,
        slot: str,
        *,
        generation: int,
        load: int,
        throttled: bool,
        answered: bool,
        ceiling: int,
        initial: int,
        backoff: float,
        probe_slowdown: float,
    ) -> WindowState:
        """Give `slot` back and, when `answered`, apply AdaptiveWindow's rules: a 429
        (`throttled`) for a request sent into the current `generation` shrinks the window
        to min(window, `load`) x `backoff`, takes `load` - 1 as the limit seen, ends slow
        start and bumps the generation; any other answer grows it (by one in slow start,
        by 1/window after, `probe_slowdown` times less past the limit seen), never past
        `ceiling`. Every change bumps the version."""
        ...

    async def renew_slots(self, key: str, slots: Sequence[str], hold_s: float) -> None:
        """Push the expiry of `slots` (those still held) to `hold_s` from now."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...


@dataclass(frozen=True, slots=True)
class SharedTicket:
    """One admitted request: its slot, and the window generation and load it was sent
    into (as pacing.Ticket)."""

    generation: int
    in_flight: int
    slot: str


class SharedWindow:
    """An AIMD limit on the requests all processes have in flight for one account.

    Implements the client's RequestGate like AdaptiveWindow: `await acquire()` before each
    HTTP request, `release(ticket, throttled=..., answered=...)` after it. `release` is
    synchronous (the client calls it in a `finally`), so it hands the backend's release to
    a task; `drain()` waits for those. `window` and `in_flight` are the shared values as
    this process last saw them (each acquire and release refreshes them); `throttled` and
    `decreases` count this process's 429s and the decreases its releases made.

    `ceiling` bounds the shared window (the connection's concurrency, the same in every
    process); `local_limit` optionally bounds this process's own share of it (a worker's
    `--concurrency`), counted here, not in the backend.
    """

    def __init__(
        self,
        backend: PacingBackend,
        key: str,
        ceiling: int,
        *,
        initial: int = INITIAL_WINDOW,
        local_limit: int | None = None,
        hold_s: float = HOLD_S,
        poll_min_s: float = POLL_MIN_S,
        poll_max_s: float = POLL_MAX_S,
    ) -> None:
        if ceiling < 1 or (local_limit is not None and local_limit < 1):
            raise ValueError("ceiling and local_limit must be at least 1")
        if hold_s <= 0:
            raise ValueError("hold_s must be positive")
        self.ceiling = ceiling
        self._backend = backend
        self._key = key
        self._initial = initial
        self._hold_s = hold_s
        self._poll = (poll_min_s, max(poll_min_s, poll_max_s))
        self._window = float(min(ceiling, max(1, initial)))
        self._in_flight = 0
        self._version = 0  # of the state _window and _in_flight were last taken from
        self._slot_ids = (f"{secrets.token_hex(6)}:{n}" for n in itertools.count())
        self._held: set[str] = set()
        self._local = asyncio.Semaphore(local_limit) if local_limit is not None else None
        self._turn = asyncio.Lock()  # the one task of this process that polls
        self._freed = asyncio.Event()  # one of this process's releases reached the backend
        self._pending: set[asyncio.Task[None]] = set()
        self._keeper: asyncio.Task[None] | None = None
        #: Requests answered 429, and decreases made: for progress and benchmarks.
        self.throttled = 0
        self.decreases = 0

    @property
    def window(self) -> int:
        """Requests that may be in flight right now, across all processes (last seen)."""
        return max(1, int(min(self._window, self.ceiling)))

    @property
    def in_flight(self) -> int:
        """Requests in flight across all processes, as last seen."""
        return self._in_flight

    @property
    def held(self) -> int:
        """Requests this process has in flight."""
        return len(self._held)

    async def acquire(self) -> SharedTicket:
        """Wait for room in the shared window (and in this process's share, if limited);
        the ticket goes back to `release`."""
        if self._local is None:
            return await self._admit()
        await self._local.acquire()
        try:
            return await self._admit()
        except BaseException:
            self._local.release()
            raise

    def release(self, ticket: SharedTicket, *, throttled: bool, answered: bool = True) -> None:
        """Give the slot back and learn from the answer (in a task: see the class)."""
        if self._local is not None:
            self._local.release()
        self._return(ticket, throttled, answered)

    async def drain(self) -> None:
        """Wait until every release has reached the backend; stop renewing slots."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None

    # -- the backend's side ----------------------------------------------------------------

    async def _admit(self) -> SharedTicket:
        if not self._turn.locked():  # nobody of ours waits: try at once
            ticket = await self._try()
            if ticket is not None:
                return ticket
        async with self._turn:
            pause = self._poll[0]
            while True:
                ticket = await self._try()
                if ticket is not None:
                    return ticket
                await wait_until(self._freed, random.uniform(pause / 2, pause))
                pause = min(pause * 2, self._poll[1])

    def _return(self, ticket: SharedTicket, throttled: bool, answered: bool) -> None:
        self._held.discard(ticket.slot)
        if answered and throttled:
            self.throttled += 1
        self._in_flight = max(0, self._in_flight - 1)
        task = asyncio.get_running_loop().create_task(
            self._release(ticket.slot, ticket.generation, ticket.in_flight, throttled, answered)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _try(self) -> SharedTicket | None:
        """One admission attempt. Cancelled while the backend answers, a slot it granted
        is given back at once rather than left to expire."""
        slot = next(self._slot_ids)
        self._freed.clear()
        attempt = asyncio.ensure_future(
            self._backend.acquire_slot(
                self._key, slot, ceiling=self.ceiling, initial=self._initial, hold_s=self._hold_s
            )
        )
        try:
            state = await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(lambda done: self._give_back(done, slot))
            raise
        self._see(state)
        if not state.admitted:
            return None
        self._held.add(slot)
        self._keep_alive()
        return SharedTicket(state.generation, state.in_flight, slot)

    def _give_back(self, attempt: asyncio.Future[WindowState], slot: str) -> None:
        if attempt.cancelled() or attempt.exception() is not None:
            return
        state = attempt.result()
        if state.admitted:
            # Not `release`: acquire gave this process's share back when it was cancelled.
            self._return(SharedTicket(state.generation, state.in_flight, slot), False, False)

    async def _release(
        self, slot: str, generation: int, load: int, throttled: bool, answered: bool
    ) -> None:
        try:
            state = await self._backend.release_slot(
                self._key,
                slot,
                generation=generation,
                load=load,
                throttled=throttled,
                answered=answered,
                ceiling=self.ceiling,
                initial=self._initial,
                backoff=BACKOFF_FACTOR,
                probe_slowdown=PROBE_SLOWDOWN,
            )
        except Exception as error:  # nobody awaits this task: the slot will expire
            log.warning("releasing a slot of %s failed (it expires): %s", self._key, error)
        else:
            self._see(state)
            if state.decreased:
                self.decreases += 1
        finally:
            self._freed.set()

    def _see(self, state: WindowState) -> None:
        """Take the shared values from an answer, unless a newer one came first."""
        if state.version >= self._version:
            self._version = state.version
            self._window = state.window
            self._in_flight = state.in_flight

    def _keep_alive(self) -> None:
        """Renew this process's slots while it holds any (a third of `hold_s` apart)."""
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        # No await between the last look at _held and the end: an admission that found
        # this task running can rely on it to renew its slot.
        while self._held:
            await asyncio.sleep(self._hold_s / 3)
            if not self._held:
                return
            try:
                await self._backend.renew_slots(self._key, sorted(self._held), self._hold_s)
            except Exception as error:
                log.warning("renewing the slots of %s failed: %s", self._key, error)


class SharedSegmentRate:
    """At most `per_second` segments a second from one sender, across all processes.

    Like SegmentRate, each send books the next free moment for its segments and sleeps
    until then; the booking is the backend's, so concurrent processes line up without a
    burst. A send cancelled while it sleeps leaves its moment unused (never a burst).
    """

    def __init__(self, backend: PacingBackend, key: str, per_second: float) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.per_second = per_second
        self._backend = backend
        self._key = key

    async def take(self, segments: int) -> None:
        """Wait until `segments` more segments may be sent."""
        wait = await self._backend.reserve(self._key, max(1, segments), self.per_second)
        if wait > 0:
            await asyncio.sleep(wait)


class SharedPacing:
    """ConnectionPacing across processes: one SharedWindow per Twilio account (base URL
    and Account SID) and one SharedSegmentRate per sender and cap, the same keys in every
    process, so every process sending for an account shares its window and rate.

    Build it on a backend, e.g. `SharedPacing(RedisPacingBackend("redis://host:6379/0"))`
    (smslink.limits.redis). Each window's ceiling is the connection's concurrency (the
    account's, shared); `ceiling`, as ConnectionPacing's, caps how many requests this
    process has in flight per account (a worker's `--concurrency`). `hold_s` is how long a
    killed process's slots keep their place.
    Like ConnectionPacing, its objects are tied to one event loop; on another it starts
    afresh (the shared state itself stays in the backend). `aclose()` waits for pending
    releases and closes the backend.
    """

    def __init__(
        self,
        backend: PacingBackend,
        *,
        ceiling: int | None = None,
        hold_s: float = HOLD_S,
        initial: int = INITIAL_WINDOW,
    ) -> None:
        self.backend = backend
        self._ceiling = ceiling
        self._hold_s = hold_s
        self._initial = initial
        self._loop: asyncio.AbstractEventLoop | None = None
        self._windows: dict[tuple[str, str], SharedWindow] = {}
        self._rates: dict[tuple[str, str, float], SharedSegmentRate] = {}

    def window(self, connection: Connection) -> SharedWindow:
        """The shared window of `connection`'s account (made on first use)."""
        self._same_loop()
        key = (connection.base_url, connection.account_sid)
        if key not in self._windows:
            self._windows[key] = SharedWindow(
                self.backend,
                window_key(connection),
                connection.concurrency,
                initial=self._initial,
                local_limit=self._ceiling,
                hold_s=self._hold_s,
            )
        return self._windows[key]

    def segment_rate(self, connection: Connection) -> SharedSegmentRate | None:
        """The shared segment rate of `connection`'s sender, or None when it has no cap."""
        cap = connection.max_segments_per_second
        if not cap:
            return None
        self._same_loop()
        key = (connection.account_sid, connection.sender, cap)
        if key not in self._rates:
            self._rates[key] = SharedSegmentRate(self.backend, rate_key(connection), cap)
        return self._rates[key]

    async def aclose(self) -> None:
        for window in self._windows.values():
            await window.drain()
        await self.backend.aclose()

    def _same_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._windows.clear()
            self._rates.clear()


def window_key(connection: Connection) -> str:
    """The backend key of an account's window: its SID and a digest of its base URL (two
    connections of one account share the limit; a simulator's account is another)."""
    digest = hashlib.sha256(connection.base_url.encode()).hexdigest()[:12]
    return f"window:{connection.account_sid}:{digest}"


def rate_key(connection: Connection) -> str:
    """The backend key of a sender's segment rate, with its cap (as ConnectionPacing)."""
    return (
        f"rate:{connection.account_sid}:{connection.sender}:{connection.max_segments_per_second!r}"
    )
