"""Limits and faults of the simulated API: concurrency limit, latency spread, 5xx and resets.

A client is only as good as its handling of what goes wrong, so the simulator can misbehave
the ways Twilio does: answer 429/20429 over a concurrency limit, take a variable time, answer
5xx without doing the work, drop the connection before or after a message is created, or
hold a created message's answer past the client's timeout. Every such event is counted in
the state's Stats, so a test can check the client's results against what really happened.

Everything here wraps one Twilio request (the app's middleware counts it first, then hands
it to a guard). With nothing configured the guard only keeps the in-flight count and peak,
so the plain simulator stays as fast as before. Fault draws come from random streams seeded
from `seed`, separate from the per-recipient outcome hash: one client sending in sequence
sees the same faults on every run, and enabling faults never changes a recipient's fate.
With concurrent clients the draws still form the same sequence, but which request gets
which draw depends on arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
from collections.abc import Awaitable, Callable

from aiohttp import web

from smslink.simulator.config import SimulatorConfig
from smslink.simulator.errors import TwilioError
from smslink.simulator.state import SimulatorState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: What the app does with an admitted request: authenticate, handle, map errors to bodies.
Answer = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

_CREATE_ROUTE = "messages.create"
#: Jitter draws are capped at this many times their mean, so no answer waits unboundedly.
JITTER_CAP = 10.0
#: How often a held answer checks whether its client is still waiting.
_HOLD_CHECK_S = 0.05
_THROTTLED_BODY = json.dumps(
    {
        "code": 20429,
        "message": "Too Many Requests",
        "more_info": "https://www.twilio.com/docs/errors/20429",
        "status": 429,
    }
).encode()
#: An RST instead of a FIN: the client sees "connection reset by peer", as when a load
#: balancer or crashed front end drops it, and the kernel discards any unsent bytes.
_LINGER_RESET = struct.pack("ii", 1, 0)


def internal_error() -> TwilioError:
    return TwilioError(20500, 500, "An internal server error has occurred")


def service_unavailable() -> TwilioError:
    return TwilioError(20503, 503, "Service Unavailable")


def has_faults(config: SimulatorConfig) -> bool:
    """True when any limit, fault or latency spread is configured (the slower guard)."""
    return (
        config.concurrency_limit is not None
        or config.latency_jitter_ms > 0
        or config.server_error_share > 0
        or config.reset_before_share > 0
        or config.reset_after_share > 0
        or config.delay_after_create_share > 0
    )


def make_guard(state: SimulatorState, answer: Answer) -> Tracker:
    """The wrapper for every Twilio request: plain tracking, or tracking plus faults."""
    if has_faults(state.config):
        return FaultGuard(state, answer)
    return Tracker(state, answer)


def drop_connection(request: web.Request) -> None:
    """Reset the request's TCP connection so the client gets no HTTP answer at all.

    Whatever the handler returns afterwards is never written: aiohttp discards writes to
    a closed transport.
    """
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class Tracker:
    """Counts Twilio requests in progress (and the peak) and applies the fixed latency.

    A request is in progress from admission until its answer is handed back, latency
    included, which is what a concurrency limit counts. The in-flight count survives
    POST /_reset (requests still running must not drive it negative); the peak, a Stats
    field, starts again from the requests then running.
    """

    def __init__(self, state: SimulatorState, answer: Answer) -> None:
        self.state = state
        self.answer = answer
        self.latency_s = state.config.latency_ms / 1000
        self.in_flight = 0

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.in_flight += 1
        stats = self.state.stats
        if self.in_flight > stats.peak_concurrency:
            stats.peak_concurrency = self.in_flight
        try:
            response = await self.answer(request, handler)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return response
        finally:
            self.in_flight -= 1

    async def release(self, app: web.Application) -> None:
        """On app shutdown: nothing to release (see FaultGuard)."""


class FaultGuard(Tracker):
    """Tracker plus the configured limit and faults, in the order a request meets them.

    1. Over `concurrency_limit`: 429/20429 at once, not counted as in progress.
    2. One draw decides a fault before any work: `server_error_share` answers 500/20500 or
       503/20503 (half each), then `reset_before_share` drops the connection. Both wait the
       latency first, like a real failure, and neither authenticates nor creates anything.
    3. Otherwise the request is answered normally after latency_ms plus the jitter.
    4. A 201 from message create gets one more draw: `reset_after_share` drops the
       connection (the message stays stored and counted), then `delay_after_create_share`
       holds the answer for `delay_after_create_s` more seconds.
    """

    def __init__(self, state: SimulatorState, answer: Answer) -> None:
        super().__init__(state, answer)
        config = state.config
        self.config = config
        self.limit = config.concurrency_limit
        self.headers: dict[str, str] = {}
        if config.retry_after_s is not None:
            self.headers["Retry-After"] = _retry_after(config.retry_after_s)
        self.jitter_mean_s = config.latency_jitter_ms / 1000
        self.before_share = config.server_error_share + config.reset_before_share
        self.after_share = config.reset_after_share + config.delay_after_create_share
        #: Set on shutdown: held answers go out at once instead of stalling the server's
        #: stop (aiohttp waits up to 60 s for handlers still running).
        self._closing = asyncio.Event()
        self.reseed()
        state.reset_hooks.append(self.reseed)

    def reseed(self) -> None:
        """Restart the draw sequences (also on POST /_reset, so a rerun meets the same
        faults). Separate streams per purpose: turning jitter on does not move faults."""
        seed = self.config.seed
        previous = getattr(self, "_released", None)
        if previous is not None:
            previous.set()  # answers held before the reset go out now
        self._released = asyncio.Event()
        self._before = random.Random(f"{seed}/faults-before")
        self._after = random.Random(f"{seed}/faults-after")
        self._jitter = random.Random(f"{seed}/latency")

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        stats = self.state.stats
        if self.limit is not None and self.in_flight >= self.limit:
            stats.throttled += 1
            await _count_unprocessed_post(request, self.state)
            return web.Response(
                body=_THROTTLED_BODY,
                status=429,
                content_type="application/json",
                headers=self.headers,
            )
        self.in_flight += 1
        if self.in_flight > stats.peak_concurrency:
            stats.peak_concurrency = self.in_flight
        try:
            return await self._serve(request, handler)
        finally:
            self.in_flight -= 1

    async def _serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        config = self.config
        if self.before_share:
            draw = self._before.random()
            if draw < self.before_share:
                await _count_unprocessed_post(request, self.state)
                await self._wait()
                if draw < config.server_error_share:
                    self.state.stats.server_errors += 1
                    half = draw < config.server_error_share / 2
                    return (internal_error() if half else service_unavailable()).response()
                self.state.stats.resets_before += 1
                drop_connection(request)
                return web.Response(status=204)  # never written: the connection is gone
        response = await self.answer(request, handler)
        await self._wait()
        if (
            self.after_share
            and response.status == 201
            and request.match_info.route.name == _CREATE_ROUTE
        ):
            draw = self._after.random()
            if draw < config.reset_after_share:
                self.state.stats.resets_after += 1
                drop_connection(request)
            elif draw < self.after_share:
                self.state.stats.delayed += 1
                await self._hold(request)
        return response

    async def _hold(self, request: web.Request) -> None:
        """Hold a created message's answer for delay_after_create_s, but no longer than the
        client waits: once it hangs up (timed out), Twilio would not keep the request going
        either, so it must stop counting against the concurrency limit. A reset or a
        shutdown ends every hold too."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.delay_after_create_s
        released = self._released
        while not (released.is_set() or self._closing.is_set()):
            left = deadline - loop.time()
            transport = request.transport
            if left <= 0 or transport is None or transport.is_closing():
                return
            await asyncio.sleep(min(_HOLD_CHECK_S, left))

    async def release(self, app: web.Application) -> None:
        """On app shutdown: end every held answer now."""
        self._closing.set()

    async def _wait(self) -> None:
        """latency_ms plus an exponential extra with mean latency_jitter_ms (capped)."""
        delay = self.latency_s
        if self.jitter_mean_s:
            mean = self.jitter_mean_s
            delay += min(self._jitter.expovariate(1 / mean), JITTER_CAP * mean)
        if delay:
            await asyncio.sleep(delay)


async def _count_unprocessed_post(request: web.Request, state: SimulatorState) -> None:
    """Count a create the guard answers itself in posts_by_to, as the handler would have:
    posts_by_to stays 'POSTs received per To' whatever happened to them."""
    if request.match_info.route.name != _CREATE_ROUTE:
        return
    to = (await request.post()).get("To")
    if to:
        state.stats.posts_by_to[str(to)] += 1


def _retry_after(seconds: float) -> str:
    """Whole seconds as HTTP wants them; a fraction is kept (non-standard, for fast tests)."""
    return str(int(seconds)) if seconds == int(seconds) else repr(seconds)
