"""Connections: what an administrator configures, and the Test button.

Every face adds, changes, lists and tests connections through here, so the rules (checked
by field in `domain.connection_rules`), the masking of secrets and the meaning of a test
result are the same on the command line and on a page. What leaves this module never holds
a token: `ConnectionView` says only whether one is set.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import StrEnum

from smslink.domain.base_url import check_base_url, display_base_url
from smslink.domain.callbacks import status_callback_url
from smslink.domain.connection_rules import checked_connection, connection_problems
from smslink.domain.errors import InvalidInput, Problem, say
from smslink.domain.models import TWILIO_FINAL, Connection, LastTest, result_for_twilio_status
from smslink.domain.phone import PhoneError, normalize_phone
from smslink.store import Store
from smslink.twilio import ApiError, NotTwilio, TwilioClient, TwilioError


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """A connection as it may be shown: every setting, no secret (`secret_set` instead)."""

    name: str
    account_sid: str
    api_key_sid: str | None
    secret_set: bool
    from_number: str | None
    messaging_service_sid: str | None
    base_url: str  # with any user info of an old stored URL masked
    poll_interval_ms: int
    poll_attempts: int
    concurrency: int
    region: str
    max_segments_per_second: float | None
    request_timeout_s: float
    last_test: LastTest | None = None  # how the last Test ended, when there was one
    #: Where Twilio posts status callbacks; None: polling only.
    callback_base_url: str | None = None

    @property
    def status_callback_url(self) -> str | None:
        """The StatusCallback each message gives Twilio, when callbacks are on."""
        base = self.callback_base_url
        return status_callback_url(base, self.name) if base else None

    @property
    def sender(self) -> str:
        return self.messaging_service_sid or self.from_number or ""

    @classmethod
    def of(cls, c: Connection, last_test: LastTest | None = None) -> ConnectionView:
        return cls(
            name=c.name,
            account_sid=c.account_sid,
            api_key_sid=c.api_key_sid,
            secret_set=bool(c.auth_token),
            from_number=c.from_number,
            messaging_service_sid=c.messaging_service_sid,
            base_url=display_base_url(c.base_url),
            poll_interval_ms=c.poll_interval_ms,
            poll_attempts=c.poll_attempts,
            concurrency=c.concurrency,
            region=c.region,
            max_segments_per_second=c.max_segments_per_second,
            request_timeout_s=c.request_timeout_s,
            last_test=last_test,
            callback_base_url=c.callback_base_url,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionChanges:
    """The settings to change; None leaves one as it is, "" clears an optional one (the
    Messaging Service, the API key), and `auth_token` replaces the secret when given."""

    account_sid: str | None = None
    auth_token: str | None = None
    from_number: str | None = None
    messaging_service_sid: str | None = None
    api_key_sid: str | None = None
    base_url: str | None = None
    poll_interval_ms: int | None = None
    poll_attempts: int | None = None
    concurrency: int | None = None
    region: str | None = None
    max_segments_per_second: float | None = None
    request_timeout_s: float | None = None
    callback_base_url: str | None = None


#: What a test SMS says: recognisable, and no marketing by mistake.
TEST_MESSAGE = "smslink test message: this connection can send SMS."


class ConnectionTestOutcome(StrEnum):
    """How a connection test ended."""

    OK = "ok"  # Twilio answered and the account is active
    INACTIVE = "inactive"  # Twilio answered, but the account is suspended or closed
    REFUSED = "refused"  # Twilio refused the credentials or the account (its code, message)
    NOT_TWILIO = "not_twilio"  # something answered, but not Twilio's API
    UNREACHABLE = "unreachable"  # refused, DNS, TLS, timeout: nothing usable answered


@dataclass(frozen=True, slots=True)
class ConnectionTest:
    """The result of the Test button: what answered, and in Twilio's words when it did."""

    outcome: ConnectionTestOutcome
    base_url: str
    message: str  # Twilio's message, or what went wrong on the way
    code: int | None = None  # Twilio's error code (or the HTTP status) when it refused
    more_info: str | None = None
    account_sid: str | None = None
    friendly_name: str | None = None
    account_status: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is ConnectionTestOutcome.OK


@dataclass(frozen=True, slots=True)
class TestMessage:
    """How a test SMS ended: Twilio's final status (or the last one seen when waiting ran
    out), in the result vocabulary, with Twilio's code and message when it failed."""

    to: str
    status: str  # delivered, undelivered, failed, sent, error
    twilio_status: str | None = None
    sid: str | None = None
    error_code: int | None = None
    error_message: str | None = None


class Connections:
    """The connections of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, connection: Connection) -> ConnectionView:
        """Check and store a new connection (its token included); InvalidInput by field."""
        connection = checked_connection(connection)
        self._store.catalogue.add_connection(connection)
        return ConnectionView.of(connection)

    def update(self, name: str, changes: ConnectionChanges) -> ConnectionView:
        """Change the given settings, check the whole connection again, store it."""
        updated = checked_connection(self._merged(name, changes))
        self._store.catalogue.update_connection(updated)
        return ConnectionView.of(updated)

    def check(self, name: str, changes: ConnectionChanges) -> None:
        """Raise InvalidInput when `update(name, changes)` would be refused, leaving the
        token aside: a face asks for a new secret only once the rest stands."""
        self.check_new(self._merged(name, changes))

    @staticmethod
    def check_new(connection: Connection) -> None:
        """Raise InvalidInput when `add(connection)` would be refused for anything but its
        token: nobody should type a secret only to hear that the Account SID has a typo."""
        problems, _ = connection_problems(connection, token_required=False)
        if problems:
            raise InvalidInput(problems=problems)

    def _merged(self, name: str, changes: ConnectionChanges) -> Connection:
        current = self._store.catalogue.get_connection(name)
        given = {
            f.name: getattr(changes, f.name)
            for f in fields(changes)
            if getattr(changes, f.name) is not None
        }
        merged = {k: (v if v != "" else None) for k, v in given.items() if k != "auth_token"}
        if "auth_token" in given:
            token = str(given["auth_token"]).strip()
            if not token:
                raise InvalidInput(problems=[Problem("auth_token", say("the new secret is empty"))])
            merged["auth_token"] = token
        return replace(current, **merged)  # type: ignore[arg-type]

    def remove(self, name: str) -> None:
        self._store.catalogue.remove_connection(name)

    def list(self) -> list[ConnectionView]:
        tests = self._store.catalogue.last_tests()
        return [
            ConnectionView.of(c, tests.get(c.name))
            for c in self._store.catalogue.list_connections()
        ]

    def show(self, name: str) -> ConnectionView:
        connection = self._store.catalogue.get_connection(name)
        return ConnectionView.of(connection, self._store.catalogue.last_tests().get(name))

    def test(self, name: str, *, timeout_s: float = 15.0) -> ConnectionTest:
        """Run the Test button: a read-only query of the account (GET Accounts/{Sid})."""
        return asyncio.run(self.test_async(name, timeout_s=timeout_s))

    async def test_async(self, name: str, *, timeout_s: float = 15.0) -> ConnectionTest:
        result = await self._test(name, timeout_s)
        message = (
            f"{result.code}: {result.message}"
            if result.outcome is ConnectionTestOutcome.REFUSED
            else result.message
        )
        self._store.catalogue.record_test(name, LastTest(datetime.now(UTC), result.ok, message))
        return result

    async def send_test_message(
        self, name: str, to: str, *, wait_s: float = 30.0, poll_s: float = 1.0
    ) -> TestMessage:
        """Send "smslink test message" to `to` through the connection and wait (up to
        `wait_s`) for its final status: the administrator's proof that messages really go
        out. The number is read like an audience's phone (the connection's region)."""
        connection = self._store.catalogue.get_connection(name)
        try:
            check_base_url(connection.base_url)
            number = normalize_phone(to, connection.region)
        except PhoneError as error:
            raise InvalidInput(problems=[Problem("to", error.args[0])]) from None
        except ValueError as error:
            raise InvalidInput(problems=[Problem("base_url", error.args[0])]) from None
        async with TwilioClient.for_connection(connection) as client:
            try:
                message = await client.create_message(
                    to=number,
                    body=TEST_MESSAGE,
                    from_number=connection.from_number,
                    messaging_service_sid=connection.messaging_service_sid,
                )
            except ApiError as error:
                return TestMessage(number, "error", None, None, error.code, error.message)
            except TwilioError as error:
                return TestMessage(number, "error", None, None, None, str(error))
            deadline = asyncio.get_running_loop().time() + wait_s
            while message.status not in TWILIO_FINAL:
                if asyncio.get_running_loop().time() >= deadline:
                    break
                await asyncio.sleep(poll_s)
                with suppress(TwilioError):
                    message = await client.fetch_message(message.sid)
        return TestMessage(
            number,
            str(result_for_twilio_status(message.status)),
            message.status,
            message.sid,
            message.error_code,
            message.error_message,
        )

    async def _test(self, name: str, timeout_s: float) -> ConnectionTest:
        connection = self._store.catalogue.get_connection(name)
        shown = display_base_url(connection.base_url)
        try:  # stored by an older smslink that allowed it: never send the token in clear
            check_base_url(connection.base_url)
        except ValueError as error:
            raise InvalidInput(problems=[Problem("base_url", error.args[0])]) from None
        client = TwilioClient.for_connection(
            connection, connect_timeout_s=timeout_s, read_timeout_s=timeout_s
        )
        try:
            async with client:
                account = await client.fetch_account()
        except NotTwilio as error:
            return ConnectionTest(
                ConnectionTestOutcome.NOT_TWILIO, shown, str(error), code=error.status
            )
        except ApiError as error:
            return ConnectionTest(
                ConnectionTestOutcome.REFUSED,
                shown,
                error.message,
                code=error.code or error.status,
                more_info=error.more_info,
            )
        except TwilioError as error:
            return ConnectionTest(ConnectionTestOutcome.UNREACHABLE, shown, str(error))
        status = str(account.get("status", "unknown"))
        return ConnectionTest(
            ConnectionTestOutcome.OK if status == "active" else ConnectionTestOutcome.INACTIVE,
            shown,
            f"the account is {status}",
            account_sid=str(account.get("sid") or ""),
            friendly_name=str(account.get("friendly_name") or ""),
            account_status=status,
        )
