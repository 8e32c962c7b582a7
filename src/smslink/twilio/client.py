"""The only code that speaks Twilio's 2010-04-01 HTTP API.

Built directly on aiohttp (measured here at ~0.7 ms CPU per request at 100 concurrent,
against ~10 ms for httpx): sending is CPU-bound on small machines, so every per-request
cost is kept out of the hot path: URLs and the auth header are built once, bodies are
form-encoded by hand, and answers are parsed with orjson (smslink/fastjson.py: a message
in ~1 us against the json module's ~4; RESULTS §15).

The client retries only what is safe to retry (429 answers, connections that never reached
the server, GETs answered 5xx), with bounded exponential backoff and jitter honouring
`Retry-After`. A POST whose answer was lost is raised as `AnswerLost` for the caller to
reconcile: the send API has no idempotency key, so repeating it could deliver twice.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import random
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote, quote_plus

import aiohttp
from yarl import URL

from smslink import fastjson
from smslink.domain.models import Connection
from smslink.twilio.errors import (
    AnswerLost,
    ApiError,
    ConnectFailed,
    ErrorKind,
    NotTwilio,
    TwilioError,
    Withheld,
)
from smslink.twilio.guarded_body import GuardedBody

#: The longest a server's Retry-After is obeyed for one retry: past it the answer is more
#: likely a misconfigured proxy than Twilio, and the caller's own patience takes over.
RETRY_AFTER_CAP_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How a retryable failure is tried again: bounded exponential backoff, full jitter."""

    #: Tries after the first before the failure is raised.
    max_retries: int = 6
    #: First backoff step in seconds; doubled each retry, capped at `cap_s`.
    base_s: float = 0.25
    cap_s: float = 8.0

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry number `attempt` (from 0); a server's Retry-After is a floor."""
        delay = random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))
        return max(delay, retry_after or 0.0)


class RequestGate(Protocol):
    """Admits each HTTP request (retries included) and hears whether Twilio throttled it.

    The policy (how many at once) belongs to the caller; the client only reports answers.
    """

    async def acquire(self) -> Any:
        """Wait until a request may go out; returns a ticket for `release`."""
        ...

    def release(self, ticket: Any, *, answered: bool, throttled: bool) -> None:
        """The request is over: `answered` when the server answered at all (not withheld,
        not a lost connection), `throttled` when that answer was 429."""
        ...


@dataclass(frozen=True, slots=True)
class Message:
    """The parts of Twilio's Message resource that smslink acts on."""

    sid: str
    status: str
    to: str
    from_: str | None
    body: str | None
    num_segments: int
    error_code: int | None
    error_message: str | None
    date_updated: datetime | None
    #: Twilio's creation date as it came: parsed only when asked (`date_created`), which
    #: only reconciliation does, while every answer and listed message is decoded.
    date_created_text: str | None = None

    @property
    def date_created(self) -> datetime | None:
        return parse_twilio_date(self.date_created_text)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Message:
        segments = data.get("num_segments")
        error_code = data.get("error_code")
        return cls(
            sid=str(data["sid"]),
            status=str(data["status"]),
            to=str(data.get("to") or ""),
            from_=_str_or_none(data.get("from")),
            body=_str_or_none(data.get("body")),
            num_segments=int(str(segments)) if segments not in (None, "") else 0,
            error_code=int(str(error_code)) if error_code not in (None, "") else None,
            error_message=_str_or_none(data.get("error_message")),
            date_updated=parse_twilio_date(data.get("date_updated")),
            date_created_text=_str_or_none(data.get("date_created")),
        )


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}


def parse_twilio_date(value: object) -> datetime | None:
    """Twilio's RFC 2822 dates (`Thu, 30 Jul 2015 20:12:31 +0000`), None when absent.

    Twilio always writes this one fixed-width UTC form, read here by position at a fraction
    of `email.utils`' cost (a tracking round reads thousands); anything else goes the slow,
    general way.
    """
    if not value:
        return None
    return _parse_twilio_date_text(value if type(value) is str else str(value))


@functools.lru_cache(maxsize=64)
def _parse_twilio_date_text(text: str) -> datetime | None:
    """Cached: dates are to the second, so the answers and listed messages of a busy
    second share a few (a datetime is immutable, so sharing one is safe)."""
    if len(text) == 31 and text.endswith(" +0000"):
        try:
            return datetime(
                int(text[12:16]), _MONTHS[text[8:11]], int(text[5:7]),
                int(text[17:19]), int(text[20:22]), int(text[23:25]), tzinfo=UTC,
            )  # fmt: skip
        except (KeyError, ValueError):
            pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None


class TwilioClient:
    """An asynchronous client for one Twilio account; use as `async with`."""

    def __init__(
        self,
        *,
        base_url: str,
        account_sid: str,
        username: str,
        password: str,
        max_connections: int = 100,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        gate: RequestGate | None = None,
    ) -> None:
        self._gate = gate
        self._base = base_url.rstrip("/")
        self._account_url = URL(f"{self._base}/Accounts/{quote(account_sid)}.json")
        self._messages_url = URL(f"{self._base}/Accounts/{quote(account_sid)}/Messages.json")
        self._message_prefix = f"{self._base}/Accounts/{quote(account_sid)}/Messages/"
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {credentials}", "Accept": "application/json"}
        self._post_headers = {
            **self._headers,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._retry = retry or RetryPolicy()
        self._session: aiohttp.ClientSession | None = None
        self._senders: dict[tuple[str | None, str | None], str] = {}  # form-encoded
        #: Counts of requests by purpose, for progress and benchmarks.
        self.requests: dict[str, int] = {"create": 0, "fetch": 0, "list": 0, "account": 0}

    @classmethod
    def for_connection(
        cls,
        connection: Connection,
        *,
        gate: RequestGate | None = None,
        retry: RetryPolicy | None = None,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float | None = None,
    ) -> TwilioClient:
        """A client for a configured connection: its URL, credentials, concurrency and
        answer timeout; `gate` (e.g. an adaptive window) admits each request."""
        return cls(
            base_url=connection.base_url,
            account_sid=connection.account_sid,
            username=connection.username,
            password=connection.auth_token,
            max_connections=connection.concurrency,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s or connection.request_timeout_s,
            retry=retry,
            gate=gate,
        )

    async def __aenter__(self) -> TwilioClient:
        connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "smslink"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- the four calls smslink makes ---------------------------------------------------

    async def create_message(
        self,
        *,
        to: str,
        body: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        may_send: Callable[[], bool] | None = None,
    ) -> Message:
        """POST a message. Raises AnswerLost when it may or may not have been created.

        `may_send` is asked before every attempt, retries included; when it says no,
        Withheld is raised and nothing (more) is sent.
        """
        sender = self._senders.get((from_number, messaging_service_sid))
        if sender is None:  # the same for every message of a run: encoded once
            sender = (
                f"MessagingServiceSid={quote_plus(messaging_service_sid)}"
                if messaging_service_sid
                else f"From={quote_plus(from_number or '')}"
            )
            self._senders[(from_number, messaging_service_sid)] = sender
        form = f"To={_form_phone(to)}&Body={quote_plus(body)}&{sender}"
        if status_callback:
            form += f"&StatusCallback={quote_plus(status_callback)}"
        self.requests["create"] += 1
        data = await self._request(
            "POST", self._messages_url, body=form.encode(), may_send=may_send
        )
        return _message(data)

    async def fetch_message(self, sid: str) -> Message:
        self.requests["fetch"] += 1
        data = await self._request("GET", URL(f"{self._message_prefix}{quote(sid)}.json"))
        return _message(data)

    async def list_messages(
        self,
        *,
        to: str | None = None,
        from_number: str | None = None,
        date_sent_after: datetime | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[list[Message]]:
        """Yield pages of messages, newest first, following `next_page_uri`."""
        async for page in self.list_message_pages(
            to=to, from_number=from_number, date_sent_after=date_sent_after, page_size=page_size
        ):
            yield [_message(item) for item in page]

    async def list_message_pages(
        self,
        *,
        to: str | None = None,
        from_number: str | None = None,
        date_sent_after: datetime | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[list[dict]]:
        """Yield pages as Twilio's raw message objects, for callers that decode only a few."""
        params: dict[str, str] = {"PageSize": str(page_size)}
        if to:
            params["To"] = to
        if from_number:
            params["From"] = from_number
        if date_sent_after is not None:
            params["DateSent>"] = date_sent_after.strftime("%Y-%m-%dT%H:%M:%SZ")
        url: URL | None = self._messages_url.with_query(params)
        while url is not None:
            self.requests["list"] += 1
            page = await self._request("GET", url)
            yield page.get("messages", [])
            next_uri = page.get("next_page_uri")
            url = self._resolve(str(next_uri)) if next_uri else None

    async def fetch_account(self) -> dict[str, object]:
        """The read-only account query behind the connection Test button."""
        self.requests["account"] += 1
        return await self._request("GET", self._account_url, retry=False)

    # -- plumbing -----------------------------------------------------------------------

    def _resolve(self, uri: str) -> URL:
        """Twilio's paging URIs are paths from the API root (`/2010-04-01/...`)."""
        if uri.startswith("http"):
            return URL(uri, encoded=True)
        root = URL(self._base)
        return root.with_path("", encoded=True).join(URL(uri, encoded=True))

    async def _request(
        self,
        method: str,
        url: URL,
        *,
        body: bytes | None = None,
        retry: bool = True,
        may_send: Callable[[], bool] | None = None,
    ) -> dict:
        gate = self._gate
        attempt = 0
        while True:
            ticket = await gate.acquire() if gate is not None else None
            answered = throttled = False
            try:
                # Asked once the gate admits the request (waiting there can take a while),
                # and again as the body is written (a pooled connection may be awaited).
                if may_send is not None and not may_send():
                    raise _withheld(method, url)
                data = await self._request_once(method, url, body, may_send)
                answered = True
                return data
            except Withheld:
                raise
            except TwilioError as error:
                answered = isinstance(error, ApiError | NotTwilio)
                throttled = isinstance(error, ApiError) and error.status == 429
                if not retry or error.kind is not ErrorKind.RETRYABLE:
                    raise
                if attempt >= self._retry.max_retries:
                    raise
                delay = self._retry.backoff(attempt, getattr(error, "retry_after", None))
            finally:
                if gate is not None:
                    gate.release(ticket, answered=answered, throttled=throttled)
            await asyncio.sleep(delay)
            attempt += 1

    async def _request_once(
        self,
        method: str,
        url: URL,
        body: bytes | None,
        may_send: Callable[[], bool] | None = None,
    ) -> dict:
        session = self._session
        if session is None:
            raise RuntimeError("TwilioClient is used outside `async with`")
        headers = self._post_headers if body is not None else self._headers
        payload = GuardedBody(body, may_send) if body is not None and may_send else body
        try:
            async with session.request(method, url, data=payload, headers=headers) as response:
                raw = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
                content_type = response.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError) as error:
            if isinstance(payload, GuardedBody) and payload.withheld:
                raise _withheld(method, url) from None
            raise _lost_or_unreachable(error, url, method) from error
        if 200 <= status < 300:
            data = _decode(raw)
            if not isinstance(data, dict):
                raise _not_twilio(url, status, method, raw, content_type)
            return data
        refusal = _api_error(status, raw, method, retry_after)
        if refusal is None:
            raise _not_twilio(url, status, method, raw, content_type)
        raise refusal


def _withheld(method: str, url: URL) -> Withheld:
    return Withheld(f"{method} {url.path} withheld by the caller: not sent")


def _lost_or_unreachable(
    error: aiohttp.ClientError | TimeoutError, url: URL, method: str
) -> TwilioError:
    """What an aiohttp failure means for the request: never connected (safe to retry), or
    the answer lost (a POST may have been created all the same)."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return ConnectFailed(_describe_connect_error(error))
    if isinstance(error, aiohttp.ConnectionTimeoutError):  # first: a TimeoutError too
        return ConnectFailed(f"timed out connecting to {url.host}")
    if isinstance(error, TimeoutError):  # aiohttp's ServerTimeoutError is one too
        return AnswerLost(f"no answer from {url.host} in time", method=method)
    if isinstance(error, aiohttp.ClientOSError | aiohttp.ServerDisconnectedError):
        return AnswerLost(
            f"connection to {url.host} lost before the answer: {error}", method=method
        )
    return AnswerLost(f"{type(error).__name__}: {error}", method=method)


def _decode(raw: bytes) -> object:
    """An answer's JSON, None when it is not JSON."""
    try:
        return fastjson.loads(raw)
    except ValueError:
        return None


def _form_phone(number: str) -> str:
    """A phone number form-encoded: E.164 ("+" and digits, as smslink sends them) needs
    only its plus escaped, at a fraction of quote_plus's cost."""
    if number[:1] == "+" and number[1:].isdigit() and number.isascii():
        return "%2B" + number[1:]
    return quote_plus(number)


def _message(data: dict) -> Message:
    try:
        return Message.from_json(data)
    except (KeyError, TypeError, ValueError) as error:
        raise NotTwilio(
            f"the answer is not a Twilio Message ({error!r} missing or malformed)"
        ) from error


def _api_error(status: int, raw: bytes, method: str, retry_after: str | None) -> ApiError | None:
    """Twilio's error answer as an ApiError; None when the body is not Twilio's error JSON
    (a proxy's page, another server's 404), so nobody mistakes it for a verdict of Twilio's.

    A 429 is taken as "too many requests" whatever its body: whoever sent it, the request
    was not processed and may be tried again later.
    """
    code: int | None = None
    message = f"HTTP {status}"
    more_info: str | None = None
    data = _decode(raw)
    if _is_twilio_error(data):
        assert isinstance(data, dict)
        try:
            code = int(data["code"]) if data.get("code") is not None else None
        except (TypeError, ValueError):
            code = None
        message = str(data.get("message") or message)
        info = data.get("more_info")
        more_info = str(info) if info else None
    elif status != 429:
        return None
    return ApiError(
        status=status,
        code=code,
        message=message,
        more_info=more_info,
        method=method,
        retry_after=_parse_retry_after(retry_after),
    )


def _is_twilio_error(data: object) -> bool:
    """Twilio's error body: `{"code": 20003, "message": "...", "more_info": "...",
    "status": 401}`. The message and status are always there; code may be null."""
    return isinstance(data, dict) and isinstance(data.get("message"), str) and "status" in data


def _not_twilio(url: URL, status: int, method: str, raw: bytes, content_type: str) -> NotTwilio:
    """Say what answered instead of Twilio, in words an administrator can act on."""
    if "html" in content_type.lower() or b"<html" in raw[:512].lower():
        kind = "an HTML page"
    elif not raw.strip():
        kind = "an empty answer"
    else:
        kind = "an answer"
    title = _html_title(raw)
    shown = f" ({title})" if title else ""
    return NotTwilio(
        f"{url.host} answered HTTP {status} with {kind}{shown} that is not Twilio's API: "
        "check the connection's base URL, or whatever stands between it and Twilio",
        status=status,
        method=method,
    )


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _html_title(raw: bytes) -> str:
    """The page's <title>, shortened and with control characters removed, else ""."""
    found = _TITLE.search(raw[:4096])
    if not found:
        return ""
    title = found.group(1).decode("utf-8", "replace")
    title = " ".join("".join(ch if ch.isprintable() else " " for ch in title).split())
    return title[:80]


def _parse_retry_after(
    value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Seconds to wait per `Retry-After`: delay-seconds or an HTTP date (RFC 9110), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now()).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(RETRY_AFTER_CAP_S, max(0.0, seconds))


def _describe_connect_error(error: aiohttp.ClientConnectorError) -> str:
    host = f"{error.host}:{error.port}"
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve host {error.host} (DNS): check the base URL"
    if isinstance(error, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return f"TLS handshake with {host} failed: {error.os_error or error}"
    reason = error.os_error.strerror if error.os_error and error.os_error.strerror else str(error)
    return f"cannot connect to {host}: {reason}"
