"""Helpers for the simulator tests: well-formed sids, a handle on a running simulator.

A module of its own (not conftest) so test files can import it by a name no other test
directory uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.wire import call_json
from twilio.rest import Client

from smslink.simulator import SimulatorConfig

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
OTHER_ACCOUNT_SID = "AC" + "fedcba9876543210" * 2
API_KEY_SID = "SK" + "00112233445566778899aabbccddeeff"
SERVICE_SID = "MG" + "abcdef0123456789" * 2
TOKEN = "simulator-token"
FROM = "+15005550006"
#: Phases short enough for tests to watch a whole lifecycle in well under a second.
FAST = SimulatorConfig(queued_s=0.03, sending_s=0.03, sent_s=0.06)


@dataclass
class Sim:
    """A running simulator and ways to talk to it."""

    base_url: str  # http://127.0.0.1:PORT/2010-04-01

    @property
    def origin(self) -> str:
        return self.base_url.removesuffix("/2010-04-01")

    def client(self, user: str = ACCOUNT_SID, secret: str = TOKEN, **kwargs: Any) -> Client:
        """The official SDK, sending its 2010 API calls here."""
        client = Client(user, secret, **kwargs)
        client.api.base_url = self.origin
        return client

    def http(
        self,
        method: str,
        path: str,
        data: dict[str, Any] | None = None,
        auth: tuple[str, str] | None = (ACCOUNT_SID, TOKEN),
    ) -> tuple[int, Any]:
        """A raw request, to see exact status codes and JSON as sent on the wire."""
        url = path if path.startswith("http") else self.origin + path
        return call_json(method, url, data, auth)

    def send(self, to: str, body: str = "Hi", **extra: Any) -> dict[str, Any]:
        """POST one message and return its JSON, insisting on 201."""
        status, message = self.http(
            "POST",
            f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
            {"To": to, "From": FROM, "Body": body, **extra},
        )
        assert status == 201, message
        return message

    def stats(self) -> dict[str, Any]:
        return self.http("GET", "/_stats", auth=None)[1]
