"""The shared pacing state in Redis: each operation one Lua script, one atomic round trip.

Why Redis (bench/RESULTS.md, "Shared pacing: Redis or PostgreSQL"): a segment booking
costs the server 22-41 us of CPU and a window acquire+release pair 55-86 us, 3-27x less
than the same operations as PostgreSQL row updates (which also wait on the account row's
lock); a full window is waited out by polling, which only a cheap operation affords.

Why Lua: a script runs atomically on the server, so reading the state, deciding and writing
it back need no transaction, lock or retry loop, whatever the number of processes. Every
script reads the server's clock (`TIME`), never the caller's, so machines whose clocks
disagree still share one timeline. Since Redis 5 scripts are replicated by their effects,
so a clock read in a script that writes is allowed.

The AIMD rules are the engine's (`smslink.engine.pacing`); the scripts carry them out with
the numbers the engine passes in, so the same constants rule one process and many.

Keys, under the prefix given (tests give each its own):

- `{prefix}{<window key>}:state`: a hash: `window` (a float, written with 17 significant
  digits so every process computes exactly what AdaptiveWindow would), `generation`
  (bumped by each decrease), `slow_start` (1 until the first decrease), `limit_seen`,
  `version` (bumped by every change, so a process can tell the newest of the answers it
  gets out of order; a new state starts it at the server's time in microseconds, above
  any version an expired one reached);
- `{prefix}{<window key>}:slots`: a sorted set: each admitted request's slot id, scored by
  the millisecond its slot expires. Expired slots are dropped before each count, so the
  slots of a process killed mid-request come back on their own; a live process renews its
  slots while it holds them;
- `{prefix}{<rate key>}`: a sender's next free moment, in microseconds of server time.

The braces are Redis Cluster hash tags: a window's two keys live in one slot, as a script
touching both requires. Every key expires after `idle_ttl_s` without use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from smslink.limits import PacingUnavailable

T = TypeVar("T")

#: KEYS: state, slots. ARGV: slot, ceiling, initial, hold_ms, idle_ms.
#: Returns {admitted (0/1), in flight (after admission), generation, window, version}.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local ceiling = tonumber(ARGV[2])
local st = redis.call('HMGET', KEYS[1], 'window', 'generation')
local window = tonumber(st[1])
local generation = tonumber(st[2]) or 0
if not window then
  window = math.min(ceiling, math.max(1, tonumber(ARGV[3])))
  redis.call('HSET', KEYS[1], 'window', string.format('%.17g', window),
             'generation', 0, 'slow_start', 1,
             'version', string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2])))
end
local allowed = math.max(1, math.floor(math.min(window, ceiling)))
local n = redis.call('ZCARD', KEYS[2])
local admitted = 0
local version
if n < allowed then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
  n = n + 1
  admitted = 1
  version = redis.call('HINCRBY', KEYS[1], 'version', 1)
else
  version = tonumber(redis.call('HGET', KEYS[1], 'version')) or 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {admitted, n, generation, string.format('%.17g', window), version}
"""

#: KEYS: state, slots. ARGV: slot, generation at send, load at send, throttled (0/1),
#: answered (0/1), ceiling, initial, backoff factor, probe slowdown, idle_ms.
#: Returns {in flight, generation, window, decreased (0/1), version}.
#: The learning is AdaptiveWindow._learn and _decrease, line for line, with one difference
#: for processes configured with different ceilings: growth stops at the caller's ceiling
#: but a lower ceiling never pulls the shared window down (each caller admits at most its
#: own ceiling anyway, in ACQUIRE).
RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
local ceiling = tonumber(ARGV[6])
local st = redis.call('HMGET', KEYS[1], 'window', 'generation', 'slow_start', 'limit_seen')
local window = tonumber(st[1])
local generation = tonumber(st[2]) or 0
local slow = st[3] ~= '0'
local limit = tonumber(st[4])
if not window then
  local t = redis.call('TIME')
  window = math.min(ceiling, math.max(1, tonumber(ARGV[7])))
  generation = 0
  slow = true
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  redis.call('HSET', KEYS[1], 'version', string.format('%.0f', us))
end
local decreased = 0
if ARGV[5] == '1' then
  if ARGV[4] == '1' then
    if tonumber(ARGV[2]) == generation then
      local load = tonumber(ARGV[3])
      slow = false
      generation = generation + 1
      decreased = 1
      limit = math.max(1, load - 1)
      window = math.max(1.0, math.min(window, load) * tonumber(ARGV[8]))
    end
  else
    local step = 1
    if not slow then
      step = 1 / window
      if limit and window >= limit then
        step = step / tonumber(ARGV[9])
      end
    end
    local grown = math.min(ceiling, window + step)
    if grown > window then
      window = grown
    end
  end
  redis.call('HSET', KEYS[1], 'window', string.format('%.17g', window),
             'generation', generation, 'slow_start', slow and 1 or 0)
  if limit then
    redis.call('HSET', KEYS[1], 'limit_seen', string.format('%.17g', limit))
  end
end
local n = redis.call('ZCARD', KEYS[2])
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[10])
redis.call('PEXPIRE', KEYS[2], ARGV[10])
return {n, generation, string.format('%.17g', window), decreased, version}
"""

#: KEYS: slots. ARGV: hold_ms, idle_ms, slot... Pushes the expiry of slots still held;
#: a slot that expired meanwhile stays gone (XX), as its place may be taken already.
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = now + tonumber(ARGV[1])
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""

#: KEYS: rate. ARGV: segments, per second. Books the next free moment for the segments
#: and returns how many microseconds the caller waits for it.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local free = tonumber(redis.call('GET', KEYS[1])) or 0
local start = math.max(now, free)
local after = start + math.max(1, tonumber(ARGV[1])) * 1000000 / tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', after),
           'PX', math.ceil((after - now) / 1000) + 60000)
return start - now
"""


@dataclass(frozen=True, slots=True)
class SlotState:
    """The shared window as one acquire or release left it (the engine's `WindowState`)."""

    admitted: bool
    in_flight: int
    generation: int
    window: float
    version: int
    decreased: bool = False


@dataclass(slots=True)
class _Bound:
    """A client and its scripts, tied to the event loop they were made on."""

    loop: asyncio.AbstractEventLoop
    client: Redis
    acquire: AsyncScript
    release: AsyncScript
    renew: AsyncScript
    reserve: AsyncScript


class RedisPacingBackend:
    """Implements the engine's `PacingBackend` on a Redis server (5 or newer).

    `url` is a redis-py URL (`redis://host:6379/0`, `rediss://` for TLS, a password in it
    if needed). `prefix` namespaces every key, so several deployments (or tests) can share
    a server. A state untouched for `idle_ttl_s` is forgotten: the window then starts
    afresh from slow start, as a new process's AdaptiveWindow would.

    The client is made on first use and belongs to the running event loop (asyncio
    connections cannot move between loops): used from another loop, a new one is made.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "smslink:pacing:",
        idle_ttl_s: float = 3600.0,
        timeout_s: float = 5.0,
    ) -> None:
        if idle_ttl_s <= 0:
            raise ValueError("idle_ttl_s must be positive")
        self._url = url
        self._prefix = prefix
        self._idle_ms = str(int(idle_ttl_s * 1000))
        self._timeout_s = timeout_s
        self._bound: _Bound | None = None
        parts = urlsplit(url)
        #: Where the server is, for messages (never the password).
        self.where = f"{parts.hostname or parts.path}:{parts.port or 6379}"

    async def reserve(self, key: str, segments: int, per_second: float) -> float:
        bound = self._bind()
        waited = await self._call(
            lambda: bound.reserve(keys=[self._key(key)], args=[segments, repr(per_second)])
        )
        return max(0, int(waited)) / 1e6

    async def acquire_slot(
        self, key: str, slot: str, *, ceiling: int, initial: int, hold_s: float
    ) -> SlotState:
        bound = self._bind()
        reply = await self._call(
            lambda: bound.acquire(
                keys=self._window_keys(key),
                args=[slot, ceiling, initial, int(hold_s * 1000), self._idle_ms],
            )
        )
        admitted, in_flight, generation, window, version = reply
        return SlotState(
            bool(int(admitted)), int(in_flight), int(generation), float(window), int(version)
        )

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
    ) -> SlotState:
        bound = self._bind()
        args: list[str | int] = [
            slot, generation, load, int(throttled), int(answered), ceiling, initial,
            repr(backoff), repr(probe_slowdown), self._idle_ms,
        ]  # fmt: skip
        reply = await self._call(lambda: bound.release(keys=self._window_keys(key), args=args))
        in_flight, new_generation, window, decreased, version = reply
        return SlotState(
            False,
            int(in_flight),
            int(new_generation),
            float(window),
            int(version),
            bool(int(decreased)),
        )

    async def renew_slots(self, key: str, slots: Sequence[str], hold_s: float) -> None:
        if not slots:
            return
        bound = self._bind()
        slots_key = self._window_keys(key)[1]
        await self._call(
            lambda: bound.renew(keys=[slots_key], args=[int(hold_s * 1000), self._idle_ms, *slots])
        )

    async def aclose(self) -> None:
        """Close the connections, if they were made on the running loop."""
        bound, self._bound = self._bound, None
        if bound is not None and bound.loop is asyncio.get_running_loop():
            await bound.client.aclose()

    # -- plumbing ---------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return f"{self._prefix}{{{key}}}"

    def _window_keys(self, key: str) -> list[str]:
        base = self._key(key)
        return [f"{base}:state", f"{base}:slots"]

    def _bind(self) -> _Bound:
        loop = asyncio.get_running_loop()
        bound = self._bound
        if bound is None or bound.loop is not loop:
            client = Redis.from_url(
                self._url,
                decode_responses=True,
                socket_timeout=self._timeout_s,
                socket_connect_timeout=self._timeout_s,
            )
            bound = _Bound(
                loop,
                client,
                client.register_script(ACQUIRE),
                client.register_script(RELEASE),
                client.register_script(RENEW),
                client.register_script(RESERVE),
            )
            self._bound = bound
        return bound

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            return await operation()
        except RedisError as error:
            raise PacingUnavailable(
                f"the shared pacing state at {self.where} failed: {error}"
            ) from error
        except OSError as error:  # a socket error redis-py did not wrap
            raise PacingUnavailable(
                f"the shared pacing state at {self.where} is unreachable: {error}"
            ) from error
