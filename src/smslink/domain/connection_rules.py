"""What makes a connection usable, checked before it is stored, by field.

The administrator's form (or the command line) gives every setting at once, so every
problem is reported at once, each naming its field (`account_sid`, `from_number`, …) and
never a flag or a form label: each face puts the message where the user typed the value.
Values that have one right spelling come back normalised (the region upper-cased, the
base URL without a trailing slash, a segment cap of 0 as "no cap").
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

from smslink.domain.base_url import check_base_url, check_callback_base_url
from smslink.domain.errors import InvalidInput, Problem, Sentence, say
from smslink.domain.models import Connection
from smslink.domain.names import check_name
from smslink.domain.phone import check_region

_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_API_KEY_SID = re.compile(r"SK[0-9a-fA-F]{32}")
#: E.164, a short code (5-6 digits) or an alphanumeric sender ID (up to 11, with a letter).
_SENDER = re.compile(r"\+[1-9]\d{6,14}|\d{5,6}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")

#: The fastest polling Twilio's API makes sense for: a status rarely changes within 0.1 s,
#: and every poll spends a request of the account's shared limit.
MIN_POLL_INTERVAL_MS = 100
#: Requests in flight at once: at least one, and no more than a sane multiple of Twilio's
#: usual account limit (about 100).
MAX_CONCURRENCY = 1000


def checked_connection(connection: Connection, *, token_required: bool = True) -> Connection:
    """The connection with its values normalised, or InvalidInput with every problem."""
    problems, normalised = connection_problems(connection, token_required=token_required)
    if problems:
        raise InvalidInput(problems=problems)
    return normalised


def connection_problems(
    c: Connection, *, token_required: bool = True
) -> tuple[list[Problem], Connection]:
    """Every problem of `c` by field, and `c` with the values that passed normalised."""
    problems: list[Problem] = []
    changes: dict[str, object] = {}

    def problem(field: str, message: Sentence) -> None:
        problems.append(Problem(field, message))

    def refused(field: str, error: ValueError) -> None:
        """A rule that raised ValueError: its argument is already a sentence."""
        problems.append(Problem(field, error.args[0]))

    try:
        check_name(c.name, say("connection name"))
    except ValueError as error:
        refused("name", error)
    if not _ACCOUNT_SID.fullmatch(c.account_sid or ""):
        problem(
            "account_sid",
            say(
                "%(value)s is not an Account SID: AC followed by 32 hex digits",
                value=repr(c.account_sid),
            ),
        )
    if token_required and not (c.auth_token or "").strip():
        problem("auth_token", say("the auth token (or API key secret) is empty"))
    if not c.from_number and not c.messaging_service_sid:
        problem(
            "from_number",
            say(
                "give a sender: a From number (+1..., a short code or a sender ID) or a "
                "Messaging Service SID"
            ),
        )
    if c.from_number and not _SENDER.fullmatch(c.from_number):
        problem(
            "from_number",
            say(
                "%(value)s is not a sender Twilio accepts: use an E.164 number (+14155550123), "
                "a short code (12345) or an alphanumeric sender ID (up to 11)",
                value=repr(c.from_number),
            ),
        )
    if c.messaging_service_sid and not _SERVICE_SID.fullmatch(c.messaging_service_sid):
        problem(
            "messaging_service_sid",
            say(
                "%(value)s is not a Messaging Service SID: MG followed by 32 hex digits",
                value=repr(c.messaging_service_sid),
            ),
        )
    if c.api_key_sid and not _API_KEY_SID.fullmatch(c.api_key_sid):
        problem(
            "api_key_sid",
            say(
                "%(value)s is not an API key SID: SK followed by 32 hex digits",
                value=repr(c.api_key_sid),
            ),
        )
    try:
        changes["base_url"] = check_base_url(c.base_url)
    except ValueError as error:
        refused("base_url", error)
    if c.callback_base_url is not None and not c.callback_base_url.strip():
        changes["callback_base_url"] = None  # empty: no callbacks, polling only
    elif c.callback_base_url is not None:
        try:
            changes["callback_base_url"] = check_callback_base_url(c.callback_base_url)
        except ValueError as error:
            refused("callback_base_url", error)
        if c.api_key_sid:
            # Twilio signs callbacks with the account's auth token, which an API-key
            # connection does not hold: they could not be told from forgeries.
            problem(
                "callback_base_url",
                say(
                    "status callbacks need the account's auth token to check Twilio's "
                    "signature, and this connection authenticates with an API key: leave the "
                    "callback base URL empty (smslink polls instead) or use the auth token"
                ),
            )
    if c.poll_interval_ms < MIN_POLL_INTERVAL_MS:
        problem(
            "poll_interval_ms",
            say(
                "%(value)s ms is too short: poll at most every %(limit)s ms",
                value=c.poll_interval_ms,
                limit=MIN_POLL_INTERVAL_MS,
            ),
        )
    if c.poll_attempts < 1:
        problem("poll_attempts", say("%(value)s polls: give at least 1", value=c.poll_attempts))
    if not 1 <= c.concurrency <= MAX_CONCURRENCY:
        problem(
            "concurrency",
            say(
                "%(value)s requests at once: give 1 to %(limit)s",
                value=c.concurrency,
                limit=MAX_CONCURRENCY,
            ),
        )
    try:
        changes["region"] = check_region(c.region)
    except ValueError as error:
        refused("region", error)
    mps = c.max_segments_per_second
    if mps is not None and not (math.isfinite(mps) and mps >= 0):
        problem(
            "max_segments_per_second",
            say(
                "%(value)s: give segments per second above 0 (e.g. 1 for a US long code), "
                "or 0 for no cap",
                value=f"{mps:g}",
            ),
        )
    elif mps == 0:  # 0 is how a cap is taken away; None is what the store keeps for it
        changes["max_segments_per_second"] = None
    if not (math.isfinite(c.request_timeout_s) and c.request_timeout_s > 0):
        problem(
            "request_timeout_s",
            say("%(value)s: give a number of seconds above 0", value=f"{c.request_timeout_s:g}"),
        )
    return problems, replace(c, **changes)  # type: ignore[arg-type]


def stored_connection_problem(connection: Connection) -> str | None:
    """Why a stored connection must not be used although it was accepted once (a base URL
    stored by an older smslink that allowed plain http to another machine), or None."""
    try:
        check_base_url(connection.base_url)
    except ValueError as error:
        return say(
            "connection %(name)s cannot be used: %(problem)s; fix its base URL",
            name=f"'{connection.name}'",
            problem=error.args[0],
        )
    return None
