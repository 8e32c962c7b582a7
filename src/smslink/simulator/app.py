"""The simulator's HTTP face: Twilio's 2010-04-01 Messages API plus test hooks.

Routes, Basic auth, request validation and error mapping live here; storage, lifecycle and
JSON shapes live in their own modules. Handlers do constant work per request (a list walks
only its page), so the app can be driven at thousands of requests per second.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from smslink.simulator import errors
from smslink.simulator.callbacks import CallbackDispatcher
from smslink.simulator.config import MAGIC_FROM_OK, SimulatorConfig
from smslink.simulator.faults import make_guard
from smslink.simulator.inbound import inbound_handler
from smslink.simulator.lifecycle import initial_snapshot
from smslink.simulator.listing import page_json, parse_list_query
from smslink.simulator.resources import ROOT, account_json, message_json
from smslink.simulator.state import InvalidPageToken, SimulatorState

STATE_KEY = web.AppKey("state", SimulatorState)
CALLBACKS_KEY = web.AppKey("callbacks", CallbackDispatcher)

MAX_BODY_CHARS = 1600
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")  # what the simulator accepts as a valid To
_NUMERIC_SENDER = re.compile(r"^(\+[1-9]\d{1,14}|\d{3,8})$")  # phone number or short code

#: Twilio's test-credential To numbers and the error each one provokes.
_MAGIC_TO: dict[str, Callable[[str, str], errors.TwilioError]] = {
    "+15005550002": errors.not_reachable,
    "+15005550003": lambda to, _sender: errors.region_not_enabled(to),
    "+15005550004": lambda _to, _sender: errors.unsubscribed(),
    "+15005550009": lambda to, _sender: errors.not_mobile(to),
}
_MAGIC_TO_INVALID = "+15005550001"
_MAGIC_FROM_INVALID = "+15005550001"
_MAGIC_FROM_QUEUE_FULL = "+15005550008"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answer(resource: dict[str, object], status: int = 200) -> web.Response:
    """A Twilio resource as JSON. orjson, not aiohttp's json module: a 1,000-message list
    page costs ~1.5 ms to write instead of ~8, and the simulator serves every request on
    one thread, so the creates waiting behind a page are held that much less (real Twilio
    does not make creates wait for someone's list page; bench/RESULTS.md section 17)."""
    return web.Response(
        body=orjson.dumps(resource), status=status, content_type="application/json", charset="utf-8"
    )


#: The Stats attribute each Twilio route counts into (every request, even rejected ones).
_COUNTERS = {
    "messages.create": "posts",
    "messages.fetch": "fetches",
    "messages.list": "lists",
    "account.fetch": "account_gets",
}


class _Authenticator:
    """Checks Basic credentials; decoded headers are cached since clients repeat them."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._cache: dict[str, str | None] = {}

    def username(self, header: str | None) -> str | None:
        """The authenticated AC/SK sid, or None when the credentials do not hold."""
        if not header:
            return None
        if header in self._cache:
            return self._cache[header]
        user = self._check(header)
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[header] = user
        return user

    def _check(self, header: str) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not sep or not (_ACCOUNT_SID.match(user) or _API_KEY_SID.match(user)):
            return None
        return user if hmac.compare_digest(secret.encode(), self._token) else None


def _twilio_middleware(
    app: web.Application, state: SimulatorState
) -> Callable[..., Awaitable[web.StreamResponse]]:
    auth = _Authenticator(state.config.auth_token)

    async def answer(request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            return await _authorised(request, handler, auth, state)
        except errors.TwilioError as exc:
            return exc.response()

    # Latency, the concurrency limit and injected faults wrap the answer (faults.py).
    guard = make_guard(state, answer)
    app.on_shutdown.append(guard.release)  # held answers must not stall a server's stop

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not request.path.startswith(ROOT + "/"):
            return await handler(request)
        counter = _COUNTERS.get(request.match_info.route.name or "")
        if counter is not None:
            setattr(state.stats, counter, getattr(state.stats, counter) + 1)
        return await guard(request, handler)

    return middleware


async def _authorised(
    request: web.Request, handler: _Handler, auth: _Authenticator, state: SimulatorState
) -> web.StreamResponse:
    """Run `handler` once the caller may act on the account in the path."""
    user = auth.username(request.headers.get("Authorization"))
    if user is None:
        raise errors.authenticate()
    account_sid = request.match_info.get("account_sid")
    if account_sid is not None:
        if not _ACCOUNT_SID.match(account_sid):
            raise errors.not_found(request.path)
        if user.startswith("AC") and user != account_sid:
            raise errors.authenticate()
        state.account(account_sid)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        raise errors.not_found(request.path) from None
    except web.HTTPMethodNotAllowed:
        raise errors.method_not_allowed(request.method) from None


def _check_sender(sender: str, config: SimulatorConfig) -> None:
    if sender == _MAGIC_FROM_INVALID:
        raise errors.invalid_from(sender)
    if sender == _MAGIC_FROM_QUEUE_FULL:
        raise errors.sender_queue_full()
    if config.owns(sender):
        return
    if not _NUMERIC_SENDER.match(sender):
        # Alphanumeric sender IDs work only when the account has them (owned_numbers).
        raise errors.invalid_from(sender)
    raise errors.from_not_owned(sender)


async def create_message(request: web.Request) -> web.Response:
    """POST Messages.json: validate in Twilio's order, store, answer 201 + Message."""
    state = request.app[STATE_KEY]
    form = await request.post()
    to = str(form.get("To") or "")
    sender = str(form.get("From") or "") or None
    service = str(form.get("MessagingServiceSid") or "") or None
    body = str(form.get("Body") or "")
    media = [str(url) for url in form.getall("MediaUrl", [])]
    if to:
        state.stats.posts_by_to[to] += 1
    if not to:
        raise errors.to_required()
    if sender is None and service is None:
        raise errors.from_required()
    if not body and not media:
        raise errors.body_required()
    if len(body) > MAX_BODY_CHARS:
        raise errors.body_too_long()
    if to == _MAGIC_TO_INVALID or not _E164.match(to):
        raise errors.invalid_to(to)
    if service is not None and not _SERVICE_SID.match(service):
        raise errors.invalid_service(service)
    if sender is not None:
        _check_sender(sender, state.config)
    magic = _MAGIC_TO.get(to)
    if magic is not None:
        raise magic(to, sender or MAGIC_FROM_OK)
    callback = str(form.get("StatusCallback") or "") or None
    msg = state.create(
        request.match_info["account_sid"],
        to=to,
        from_=sender,
        service_sid=service,
        body=body,
        num_media=len(media),
        status_callback=callback,
    )
    request.app[CALLBACKS_KEY].schedule(msg)
    snap = initial_snapshot(msg.created, service is not None)
    return _answer(message_json(msg, snap), status=201)


async def fetch_message(request: web.Request) -> web.Response:
    """GET Messages/{sid}.json: the message with its status as of now."""
    state = request.app[STATE_KEY]
    msg = state.get(request.match_info["account_sid"], request.match_info["sid"])
    if msg is None:
        raise errors.not_found(request.path)
    return _answer(message_json(msg, state.snapshot(msg)))


async def list_messages(request: web.Request) -> web.Response:
    """GET Messages.json: one page, newest first, with Twilio's paging links."""
    state = request.app[STATE_KEY]
    account_sid = request.match_info["account_sid"]
    query = parse_list_query(request.query)
    now = state.clock()
    try:
        found, more = state.page(
            account_sid,
            query.filter,
            query.page_size,
            after=query.after,
            before=query.before,
            skip=query.page * query.page_size,
            now=now,
        )
    except InvalidPageToken:
        raise errors.bad_request(f"Invalid PageToken: {query.token}") from None
    items = [message_json(msg, state.snapshot(msg, now)) for msg in found]
    return _answer(page_json(account_sid, query, items, more))


async def fetch_account(request: web.Request) -> web.Response:
    """GET Accounts/{sid}.json: what a connection test reads."""
    state = request.app[STATE_KEY]
    return _answer(account_json(state.account(request.match_info["account_sid"])))


async def get_stats(request: web.Request) -> web.Response:
    """GET /_stats: request counters for tests and benchmarks (no auth)."""
    return web.json_response(request.app[STATE_KEY].stats_json())


async def get_messages(request: web.Request) -> web.Response:
    """GET /_messages: every message in creation order with its status as of now (no auth,
    never faulted), so end-to-end tests can compare a client's results with the truth."""
    state = request.app[STATE_KEY]
    now = state.clock()
    keys = ("sid", "to", "from", "status", "error_code", "body")
    items = []
    for msg in sorted(state.messages.values(), key=lambda m: m.seq):
        full = message_json(msg, state.snapshot(msg, now))
        items.append({key: full[key] for key in keys} | {"from": msg.sender})
    return web.json_response({"messages": items})


async def get_timeline(request: web.Request) -> web.Response:
    """GET /_timeline: each message's creation, status and callback times (no auth, never
    faulted), for benchmarks (SimulatorState.timeline_json)."""
    return web.json_response(request.app[STATE_KEY].timeline_json())


async def post_reset(request: web.Request) -> web.Response:
    """POST /_reset: forget all messages and counters (no auth)."""
    request.app[STATE_KEY].reset()
    return web.json_response({"reset": True})


def create_app(
    config: SimulatorConfig | None = None, *, state: SimulatorState | None = None
) -> web.Application:
    """A fresh simulator app; pass `state` to share or inspect its memory (e.g. a test clock)."""
    state = state or SimulatorState(config or SimulatorConfig())
    app = web.Application()
    app.middlewares.append(_twilio_middleware(app, state))
    app[STATE_KEY] = state
    # Status callbacks go out from this app's loop through one session it opens and closes.
    callbacks = app[CALLBACKS_KEY] = CallbackDispatcher(state)
    app.on_startup.append(callbacks.start)
    app.on_cleanup.append(callbacks.close)
    state.reset_hooks.append(callbacks.cancel_pending)
    accounts = f"{ROOT}/Accounts/{{account_sid}}"
    app.router.add_post(f"{accounts}/Messages.json", create_message, name="messages.create")
    app.router.add_get(f"{accounts}/Messages.json", list_messages, name="messages.list")
    app.router.add_get(f"{accounts}/Messages/{{sid}}.json", fetch_message, name="messages.fetch")
    app.router.add_get(f"{accounts}.json", fetch_account, name="account.fetch")
    app.router.add_get("/_stats", get_stats)
    app.router.add_get("/_messages", get_messages)
    app.router.add_get("/_timeline", get_timeline)
    app.router.add_post("/_reset", post_reset)
    app.router.add_post("/_inbound", inbound_handler(state.config.auth_token))
    return app
