"""Status callbacks: the simulator POSTing each status change to a message's StatusCallback.

Twilio tells a sender about every status change after the first (the create answer carries
the first) by POSTing form-encoded parameters to the message's `StatusCallback` URL, signed
with `X-Twilio-Signature`. Receivers built on that must cope with what Twilio really does:
callbacks that arrive late or out of order, and (with `#rc=` style retries) the same
callback twice. This module reproduces it so those receivers can be tested over real HTTP.

Status itself stays derived from the clock (see lifecycle.snapshot); callbacks only read it.
At creation every change of the message is known in advance, so each one is a timer on the
event loop (`loop.call_later`) firing at the moment that status begins, and only then a task
that POSTs it through one shared aiohttp session opened on app startup. Unless disorder is
asked for, a message's callbacks go one after another, as a receiver's tests expect: so a
slow or retried callback holds back the message's later ones (up to its retries times the
15 s timeout), where Twilio would send them anyway; `callback_disorder` is that case.

The signature is computed here rather than with smslink's own `smslink.twilio.signature`:
the simulator stands in for Twilio and must stay independent of the product it tests, so
that checking smslink's validator against it proves something.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import random
import time
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from smslink.simulator.lifecycle import initial_snapshot
from smslink.simulator.resources import API_VERSION
from smslink.simulator.state import Message, SimulatorState

SIGNATURE_HEADER = "X-Twilio-Signature"
#: The same on every attempt of one callback, so a receiver can tell a retry from news.
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
USER_AGENT = "TwilioProxy/1.1"  # what Twilio's webhook requests identify as
#: Twilio gives a webhook 15 seconds to answer before it counts as failed.
CALLBACK_TIMEOUT_S = 15.0
#: Backoff before retry n (1-based): base * 2**(n-1), capped; short, since it is a test peer.
RETRY_BASE_S = 0.05
RETRY_CAP_S = 1.0
#: Disorder mode delays each callback by up to the span of the message's callbacks (at
#: least this), so later statuses regularly overtake earlier ones.
MIN_DISORDER_S = 0.05
#: Twilio's most retries a `#rc=` connection override may ask for.
MAX_RETRY_COUNT = 5
_FINAL_WITH_DLR = ("delivered", "undelivered")  # carry RawDlrDoneDate, the carrier's receipt
_FAILING = ("failed", "undelivered")  # carry ErrorCode


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature: base64(HMAC-SHA1(auth token, URL + sorted name/value pairs))."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def transitions(state: SimulatorState, msg: Message) -> list[tuple[str, float]]:
    """Every status `msg` goes through, in order, with when it begins (epoch seconds).

    Read off `state.snapshot` at the middle of each phase rather than recomputed, so the
    callbacks can never disagree with what a fetch shows at the same moment. Phases of zero
    length are skipped, as a fetch could never see them either.
    """
    config = state.config
    bounds = {
        msg.created,
        msg.dispatch,
        msg.dispatch + config.sending_s,
        msg.dispatch + config.sending_s + config.sent_s,
    }
    if msg.service_sid is not None:
        bounds.add(msg.created + config.queued_s / 2)
    ordered = sorted(bounds)
    samples = [(a + b) / 2 for a, b in itertools.pairwise(ordered) if b > a]
    samples.append(ordered[-1] + 1.0)  # past every phase: the final (or stuck) status
    found: list[tuple[str, float]] = []
    for at in samples:
        snap = state.snapshot(msg, at)
        if not found or found[-1][0] != snap.status:
            found.append((snap.status, snap.updated_at))
    return found


def callback_params(msg: Message, status: str, at: float) -> dict[str, str]:
    """The form Twilio POSTs when `msg` enters `status` at `at` (examples/status_callback_*)."""
    params = {
        "ApiVersion": API_VERSION,
        "MessageStatus": status,
        "SmsSid": msg.sid,
        "SmsStatus": status,
        "To": msg.to,
        "From": msg.sender,
        "MessageSid": msg.sid,
        "AccountSid": msg.account_sid,
        "NumSegments": str(msg.segments),
    }
    if status in _FINAL_WITH_DLR:
        params["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime(at))
    if status in _FAILING and msg.fate.error_code is not None:
        params["ErrorCode"] = str(msg.fate.error_code)
    if msg.service_sid is not None:
        params["MessagingServiceSid"] = msg.service_sid
    return params


class CallbackDispatcher:
    """Fires the status callbacks of one simulator app from its event loop.

    `start`/`close` are the app's on_startup/on_cleanup hooks: the HTTP session lives exactly
    as long as the server, and nothing outlives it (pending timers and POSTs are cancelled).
    """

    def __init__(self, state: SimulatorState) -> None:
        self._state = state
        # Seeded, so a disordered run is reproducible given the same order of requests.
        self._rng = random.Random(state.config.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, _app: web.Application | None = None) -> None:
        """Open the shared session (on_startup: it must be created inside the app's loop)."""
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S),
            headers={"User-Agent": USER_AGENT},
        )

    async def close(self, _app: web.Application | None = None) -> None:
        """Cancel everything still pending and close the session (on_cleanup)."""
        tasks = list(self._tasks)
        self.cancel_pending()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._loop = None
        # The state may outlive this app (SimulatorServer restarted): stop hooking its reset.
        if self.cancel_pending in self._state.reset_hooks:
            self._state.reset_hooks.remove(self.cancel_pending)

    def cancel_pending(self) -> None:
        """Drop callbacks not yet delivered: after POST /_reset their messages are gone."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()

    def schedule(self, msg: Message) -> None:
        """Arrange a POST for every status change of `msg` after the first; no-op without a
        StatusCallback (or before the app has started)."""
        url = msg.status_callback
        loop = self._loop
        if url is None or loop is None:
            return
        first = initial_snapshot(msg.created, msg.service_sid is not None).status
        changes = [(status, at) for status, at in transitions(self._state, msg) if status != first]
        if not changes:
            return
        config = self._state.config
        spread = max(changes[-1][1] - changes[0][1], MIN_DISORDER_S)
        now = self._state.clock()
        # In order unless disorder is asked for: each callback of the message waits until
        # the one before it is done (answered or given up), because timers due together
        # (a busy loop) and POSTs racing on the wire could otherwise swap two of them.
        before: asyncio.Future[None] | None = None
        for status, at in changes:
            if config.callback_drop_share and self._rng.random() < config.callback_drop_share:
                self._state.stats.callbacks_dropped += 1  # lost on the way, retries and all
                continue
            delay = max(0.0, at - now)
            if config.callback_disorder:
                delay += self._rng.uniform(0.0, spread)
            params = callback_params(msg, status, at)
            key = next(self._ids)
            done: asyncio.Future[None] = loop.create_future()
            wait_for = None if config.callback_disorder else before
            self._timers[key] = loop.call_later(delay, self._fire, key, url, params, wait_for, done)
            before = done

    def _fire(
        self,
        key: int,
        url: str,
        params: dict[str, str],
        wait_for: asyncio.Future[None] | None,
        done: asyncio.Future[None],
    ) -> None:
        """The timer went off: start the POST as a task, tracked so close() can end it."""
        self._timers.pop(key, None)
        task = asyncio.ensure_future(self._deliver_after(wait_for, url, params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _task: _finish(done))

    async def _deliver_after(
        self, wait_for: asyncio.Future[None] | None, url: str, params: dict[str, str]
    ) -> None:
        """POST one callback once the message's previous one (if any) is done."""
        if wait_for is not None:
            await wait_for
        await self._deliver(url, params)

    async def _deliver(self, url: str, params: dict[str, str]) -> None:
        """POST one callback, retrying a failure (connection error, non-2xx) as configured."""
        session = self._session
        if session is None:
            return
        # Signed over the StatusCallback as given; the fragment (Twilio's connection
        # overrides) is never part of the request itself.
        token = f"{next(self._ids)}-{params['MessageSid']}-{params['MessageStatus']}"
        headers = {
            SIGNATURE_HEADER: sign(self._state.config.auth_token, url, params),
            IDEMPOTENCY_HEADER: token,
        }
        target, _, fragment = url.partition("#")
        for attempt in range(retry_count(fragment, self._state.config.callback_retries) + 1):
            if attempt:
                self._state.stats.callbacks_retried += 1
                await asyncio.sleep(min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (attempt - 1)))
            started = self._state.clock()
            try:
                async with session.post(target, data=params, headers=headers) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self._state.stats.callbacks_sent += 1
                        self._state.callback_times.setdefault(params["MessageSid"], []).append(
                            (params["MessageStatus"], started, self._state.clock())
                        )
                        return
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue  # unreachable, reset, timed out or not a usable URL: a failure
        self._state.stats.callbacks_failed += 1


def _finish(done: asyncio.Future[None]) -> None:
    """Let the message's next callback go (once, whether this one was answered or not)."""
    if not done.done():
        done.set_result(None)


def retry_count(fragment: str, default: int) -> int:
    """Retries a callback URL asks for with Twilio's `rc=` override (capped at 5), else
    `default`. https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides"""
    for pair in fragment.split("&"):
        key, _, value = pair.partition("=")
        if key == "rc" and value.isdigit():
            return min(int(value), MAX_RETRY_COUNT)
    return default
