"""Twilio status callbacks: the URL every message gives Twilio, and what a callback says.

When a connection has a callback base URL, each message is created with
`StatusCallback = <callback base URL>/twilio/status/<connection name>#rc=5&rp=all`. The
fragment is Twilio's per-URL connection override
(https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides): `rc` is the
retry count (0 to 5, default 1) and `rp` the retry policy (`all`: retry whatever failed,
a refused connection, a timeout or an error answer), all within Twilio's total time budget
(`tt`, 15 s by default). A fragment never travels in the HTTP request itself, so the
receiver accepts the signature computed over the URL with or without it.

Pure: no I/O, no framework; the web face and the application build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

#: Twilio's connection override for a status callback that fails: up to 5 retries, for any
#: failure. A receiver that refuses on purpose answers 2xx (an unknown message) or 403 (a
#: bad signature: 5 retries of it cost nothing and change nothing).
RETRY_FRAGMENT = "rc=5&rp=all"
#: Where the web service receives them; the connection's name follows.
CALLBACK_PATH = "/twilio/status/"

#: Twilio's titles of the delivery errors a status callback reports by code only (its
#: `ErrorCode`, no message), as the Message resource's `error_message` gives them, so a
#: result set by a callback reads like one set by polling. https://www.twilio.com/docs/api/errors
DELIVERY_ERRORS: dict[int, str] = {
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Carrier violation",
    30008: "Unknown error",
}

#: Longest value of a callback parameter smslink reads: anything longer is not Twilio's.
_MAX_VALUE = 64


def callback_path(connection_name: str) -> str:
    """The receiver's path for a connection, its name percent-encoded."""
    return CALLBACK_PATH + quote(connection_name, safe="")


def status_callback_url(callback_base_url: str, connection_name: str) -> str:
    """The `StatusCallback` a message of this connection is created with."""
    return f"{callback_base_url.rstrip('/')}{callback_path(connection_name)}#{RETRY_FRAGMENT}"


def signed_url_candidates(callback_base_url: str, connection_name: str) -> tuple[str, str]:
    """The URLs Twilio may have signed a callback of this connection over: the
    `StatusCallback` as given, and the same without its fragment (what was requested)."""
    url = status_callback_url(callback_base_url, connection_name)
    return url, url.partition("#")[0]


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """What one status callback says about one message."""

    sid: str
    status: str
    error_code: int | None = None

    @property
    def error_message(self) -> str | None:
        return DELIVERY_ERRORS.get(self.error_code) if self.error_code is not None else None


def status_update(params: dict[str, str]) -> StatusUpdate | None:
    """The update a callback's form carries, or None when it is not a usable one (no sid,
    no status, values of a shape Twilio never sends)."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if not (0 < len(sid) <= _MAX_VALUE and sid.isalnum() and sid.isascii()):
        return None
    if not (0 < len(status) <= _MAX_VALUE and status.isalpha() and status.isascii()):
        return None
    raw_code = params.get("ErrorCode") or ""
    code = int(raw_code) if raw_code.isdigit() and len(raw_code) <= 9 else None
    return StatusUpdate(sid, status.lower(), code or None)
