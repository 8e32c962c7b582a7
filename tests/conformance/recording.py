"""The simulator on a loopback port, recording every request and answer exactly as sent.

Conformance has to judge what really crosses the wire (the bytes smslink's client, the
official SDK or a raw request wrote, and the bytes the simulator answered), not what either
side believes it sent. So the real simulator app is served over real HTTP with one extra,
outermost aiohttp middleware that keeps a copy of each exchange; the simulator's own code is
untouched.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from twilio.rest import Client

from smslink.simulator import SimulatorConfig, run_in_thread
from tests.wire import call_json

ACCOUNT_SID = "AC" + "c0f0c0f0c0f0c0f0c0f0c0f0c0f0c0f0"
TOKEN = "conformance-token"
FROM = "+15005550006"  # Twilio's magic sender that always succeeds
SERVICE_SID = "MG" + "0123456789abcdef" * 2
API_ROOT = "/2010-04-01"
CALLBACK_PATH = "/conformance/status-callback"
#: Phases short enough to watch a whole lifecycle in a fraction of a second.
FAST = SimulatorConfig(auth_token=TOKEN, queued_s=0.02, sending_s=0.02, sent_s=0.04)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request and its answer, as bytes on the wire."""

    method: str
    raw_path: str  # path and query string, percent-encoded exactly as the client sent them
    headers: dict[str, str]
    body: bytes
    status: int
    content_type: str
    data: bytes

    @property
    def path(self) -> str:
        return urllib.parse.unquote(self.raw_path.partition("?")[0])

    @property
    def query(self) -> list[tuple[str, str]]:
        return urllib.parse.parse_qsl(self.raw_path.partition("?")[2], keep_blank_values=True)

    @property
    def is_twilio_api(self) -> bool:
        """True for Twilio's 2010 API, False for the simulator's own hooks and callbacks."""
        return self.path.startswith(API_ROOT + "/")

    def json(self) -> Any:
        return json.loads(self.data)

    def __str__(self) -> str:
        return f"{self.method} {self.raw_path} -> {self.status}"


async def _accept_callback(request: web.Request) -> web.Response:
    return web.Response(status=204)


class RecordingSimulator:
    """The simulator app in a background thread (run_in_thread), recording."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.exchanges: list[Exchange] = []
        self.base_url = ""  # http://127.0.0.1:PORT/2010-04-01: smslink's connection base URL
        self._serving = contextlib.ExitStack()

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:PORT`: the official SDK's `client.api.base_url`."""
        return self.base_url.removesuffix(API_ROOT)

    @property
    def callback_url(self) -> str:
        """A StatusCallback URL served by this same server (recorded, not validated)."""
        return self.origin + CALLBACK_PATH

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> RecordingSimulator:
        self.base_url = self._serving.enter_context(
            run_in_thread(self.config, extend=self._install)
        )
        return self

    def stop(self) -> None:
        self._serving.close()

    def _install(self, app: web.Application) -> None:
        # Outermost, so it sees the request before and the answer after everything else.
        app.middlewares.insert(0, self._record)
        # Somewhere for StatusCallback URLs to point that answers like a healthy receiver.
        app.router.add_post(CALLBACK_PATH, _accept_callback)

    @web.middleware
    async def _record(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        body = await request.read()  # cached by aiohttp: the handler still gets the form
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # routing misses outside the Twilio API
            self._keep(request, body, exc.status, exc.content_type, exc.text or "")
            raise
        data = response.body if isinstance(response, web.Response) else b""
        self._keep(request, body, response.status, response.content_type, data)
        return response

    def _keep(
        self, request: web.Request, body: bytes, status: int, content_type: str, data: Any
    ) -> None:
        raw = data if isinstance(data, bytes) else str(data or "").encode()
        self.exchanges.append(
            Exchange(
                method=request.method,
                raw_path=request.raw_path,
                headers=dict(request.headers),
                body=body,
                status=status,
                content_type=content_type,
                data=raw,
            )
        )

    # -- talking to it ------------------------------------------------------------------

    def sdk(self, user: str = ACCOUNT_SID, secret: str = TOKEN) -> Client:
        """Twilio's official Python SDK, sending its 2010 API calls here."""
        client = Client(user, secret)
        client.api.base_url = self.origin
        return client

    def http(
        self,
        method: str,
        path: str,
        data: dict[str, Any] | None = None,
        auth: tuple[str, str] | None = (ACCOUNT_SID, TOKEN),
    ) -> tuple[int, Any]:
        """A raw request, for answers no SDK call produces (a page of our choosing, 401s)."""
        url = path if path.startswith("http") else self.origin + path
        return call_json(method, url, data, auth)

    def send(self, to: str, body: str = "Hi", **extra: Any) -> dict[str, Any]:
        """POST one message from the magic sender and return its JSON, insisting on 201."""
        form = {"To": to, "Body": body, **extra}
        if "MessagingServiceSid" not in form:
            form.setdefault("From", FROM)
        status, message = self.http(
            "POST", f"{API_ROOT}/Accounts/{ACCOUNT_SID}/Messages.json", form
        )
        assert status == 201, message
        return message

    def api_exchanges(self) -> list[Exchange]:
        """Every recorded exchange with Twilio's 2010 API (hooks and callbacks left out)."""
        return [ex for ex in self.exchanges if ex.is_twilio_api]
