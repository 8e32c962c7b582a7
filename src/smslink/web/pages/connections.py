"""The administrator's connection pages: the list with each last Test, the form with every
setting the command line has, and the Test button.

The token field is write-only: the form never carries the stored token back to the
browser, and an empty token field on an edit leaves the token as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smslink.app.connections import (
    ConnectionChanges,
    ConnectionTest,
    ConnectionView,
    TestMessage,
)
from smslink.domain.errors import InvalidInput, Problem
from smslink.domain.models import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_POLL_ATTEMPTS,
    DEFAULT_POLL_INTERVAL_MS,
    DEFAULT_REGION,
    DEFAULT_REQUEST_TIMEOUT_S,
    Connection,
)
from smslink.web.i18n import _
from smslink.web.pages.common import administrator, field_errors, form, redirect, smslink, text
from smslink.web.templating import render

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Field:
    """One setting on the form: its name, label, help, default and input type."""

    name: str
    label: str
    help: str
    default: str = ""
    kind: str = "text"  # text, number, password, url
    step: str = ""


def fields() -> list[Field]:
    """The form's settings, in the original guide's order, labels in the page's language."""
    return [
        Field(
            "base_url",
            _("Base URL"),
            _("Twilio's API address; http only for this machine."),
            DEFAULT_BASE_URL,
            "url",
        ),
        Field(
            "account_sid",
            _("Account SID"),
            _("AC followed by 32 hex digits, from the Twilio console."),
        ),
        Field(
            "auth_token",
            _("Auth Token"),
            _("Stored encrypted and never shown again; leave empty to keep it."),
            kind="password",
        ),
        Field(
            "api_key_sid",
            _("API key SID"),
            _("Optional: authenticate with an API key (SK…); its secret goes in the token field."),
        ),
        Field(
            "from_number",
            _("From number"),
            _("E.164 number (+14155550123), short code or alphanumeric sender ID."),
        ),
        Field(
            "messaging_service_sid",
            _("Messaging Service SID"),
            _("Optional: send through a Messaging Service (MG…) instead of the From number."),
        ),
        Field(
            "poll_interval_ms",
            _("Retry interval (ms)"),
            _("How often each message's status is polled."),
            str(DEFAULT_POLL_INTERVAL_MS),
            "number",
            "100",
        ),
        Field(
            "poll_attempts",
            _("Retry attempts"),
            _("Polls per message before it is reported as sent."),
            str(DEFAULT_POLL_ATTEMPTS),
            "number",
            "1",
        ),
        Field(
            "concurrency",
            _("Concurrency"),
            _("Most API requests at once; the run finds the account's real limit by itself."),
            str(DEFAULT_CONCURRENCY),
            "number",
            "1",
        ),
        Field(
            "region",
            _("Region"),
            _("Country for numbers written without +, e.g. US, GB, DE."),
            DEFAULT_REGION,
        ),
        Field(
            "max_segments_per_second",
            _("Segments per second"),
            _("Optional cap for a slow sender: US long code 1, toll-free 3, short code 100."),
            "",
            "number",
            "any",
        ),
        Field(
            "request_timeout_s",
            _("Request timeout (s)"),
            _("How long to wait for one answer before it counts as lost."),
            f"{DEFAULT_REQUEST_TIMEOUT_S:g}",
            "number",
            "any",
        ),
        Field(
            "callback_base_url",
            _("Status callback address"),
            _(
                "Optional: this service's public https address, e.g. https://sms.example.com. "
                "Twilio then reports every status change to it at /twilio/status/ followed by "
                "the connection's name, and polling only fills in for reports that do not "
                "come. Not with an API key."
            ),
            "",
            "url",
        ),
    ]


@router.get("/connections")
def list_page(request: Request) -> Response:
    user = administrator(request)
    return render(
        request, "connections/list.html", user, connections=smslink(request).connections.list()
    )


@router.get("/connections/new")
def new_page(request: Request) -> Response:
    user = administrator(request)
    values = {f.name: f.default for f in fields()}
    return _form(request, user, None, values, {}, [], None)


@router.post("/connections/new")
async def create(request: Request) -> Response:
    user = administrator(request)
    posted = await form(request)
    name = text(posted, "name")
    values = {f.name: text(posted, f.name) for f in fields()} | {"name": name}
    app = smslink(request)
    try:
        connection, bad_numbers = _connection(name, values)
        _all_problems(bad_numbers, lambda: app.connections.check_new(connection))
        app.connections.add(connection)
    except InvalidInput as error:
        values["auth_token"] = ""  # never sent back
        errors, general = field_errors(error)
        return _form(request, user, None, values, errors, general, None, status_code=422)
    return redirect(f"/connections/{_quote(name)}?added=1")


@router.get("/connections/{name}")
def edit_page(request: Request, name: str) -> Response:
    user = administrator(request)
    view = smslink(request).connections.show(name)
    return _form(request, user, view, _values(view), {}, [], None)


@router.post("/connections/{name}")
async def update(request: Request, name: str) -> Response:
    user = administrator(request)
    posted = await form(request)
    app = smslink(request)
    view = app.connections.show(name)
    values = {f.name: text(posted, f.name) for f in fields()}
    try:
        changes, bad_numbers = _changes(values)
        _all_problems(bad_numbers, lambda: app.connections.check(name, changes))
        app.connections.update(name, changes)
    except InvalidInput as error:
        values["auth_token"] = ""
        errors, general = field_errors(error)
        return _form(request, user, view, values, errors, general, None, status_code=422)
    return redirect(f"/connections/{_quote(name)}?saved=1")


@router.post("/connections/{name}/test")
async def test(request: Request, name: str) -> Response:
    user = administrator(request)
    await form(request)
    app = smslink(request)
    result = await app.connections.test_async(name)
    view = app.connections.show(name)
    return _form(request, user, view, _values(view), {}, [], result)


@router.post("/connections/{name}/test-sms")
async def test_sms(request: Request, name: str) -> Response:
    """Send a test SMS to the number the administrator typed and show its final status."""
    user = administrator(request)
    posted = await form(request)
    app = smslink(request)
    to = text(posted, "to")
    try:
        sent = await app.connections.send_test_message(name, to)
    except InvalidInput as error:
        view = app.connections.show(name)
        errors, general = field_errors(error)
        return _form(request, user, view, _values(view), errors, general, None, sms_to=to)
    view = app.connections.show(name)
    return _form(request, user, view, _values(view), {}, [], None, sms=sent, sms_to=to)


@router.post("/connections/{name}/delete")
async def delete(request: Request, name: str) -> Response:
    administrator(request)
    await form(request)
    smslink(request).connections.remove(name)
    return redirect("/connections?removed=1")


def _form(
    request: Request,
    user: Any,
    view: ConnectionView | None,
    values: dict[str, str],
    errors: dict[str, str],
    general: list[str],
    test_result: ConnectionTest | None,
    status_code: int = 200,
    sms: TestMessage | None = None,
    sms_to: str = "",
) -> Response:
    return render(
        request,
        "connections/form.html",
        user,
        status_code=status_code,
        connection=view,
        fields=fields(),
        values=values,
        errors=errors,
        general=general,
        test=test_result,
        sms=sms,
        sms_to=sms_to,
        added=request.query_params.get("added") == "1",
        saved=request.query_params.get("saved") == "1",
    )


def _values(view: ConnectionView) -> dict[str, str]:
    """What the edit form shows: every setting but the token."""
    cap = view.max_segments_per_second
    return {
        "base_url": view.base_url,
        "account_sid": view.account_sid,
        "auth_token": "",
        "api_key_sid": view.api_key_sid or "",
        "from_number": view.from_number or "",
        "messaging_service_sid": view.messaging_service_sid or "",
        "poll_interval_ms": str(view.poll_interval_ms),
        "poll_attempts": str(view.poll_attempts),
        "concurrency": str(view.concurrency),
        "region": view.region,
        "max_segments_per_second": "" if cap is None else f"{cap:g}",
        "request_timeout_s": f"{view.request_timeout_s:g}",
        "callback_base_url": view.callback_base_url or "",
    }


def _numbers(values: dict[str, str]) -> tuple[dict[str, Any], list[Problem]]:
    """The numeric settings parsed, with a problem for each that is not a number."""
    parsed: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, kind in (
        ("poll_interval_ms", int),
        ("poll_attempts", int),
        ("concurrency", int),
        ("max_segments_per_second", float),
        ("request_timeout_s", float),
    ):
        raw = values.get(name, "").strip()
        if not raw:
            continue
        try:
            parsed[name] = kind(raw)
        except ValueError:
            word = _("a whole number") if kind is int else _("a number")
            problems.append(
                Problem(name, _("%(value)s is not %(kind)s", value=repr(raw), kind=word))
            )
    return parsed, problems


def _all_problems(bad_numbers: list[Problem], check: Callable[[], None]) -> None:
    """Raise InvalidInput with the numbers that are not numbers and every problem the
    application finds in the rest, so the form shows them all at once."""
    problems = list(bad_numbers)
    try:
        check()
    except InvalidInput as error:
        taken = {p.field for p in bad_numbers}
        problems += [p for p in error.problems if p.field not in taken]
    if problems:
        raise InvalidInput(problems=problems)


def _connection(name: str, values: dict[str, str]) -> tuple[Connection, list[Problem]]:
    """The form as a connection (a number that is not one left at its default), and the
    problems of those numbers."""
    numbers, problems = _numbers(values)
    connection = Connection(
        name=name,
        account_sid=values["account_sid"].strip(),
        auth_token=values["auth_token"].strip(),
        from_number=values["from_number"].strip() or None,
        messaging_service_sid=values["messaging_service_sid"].strip() or None,
        api_key_sid=values["api_key_sid"].strip() or None,
        base_url=values["base_url"].strip() or DEFAULT_BASE_URL,
        poll_interval_ms=numbers.get("poll_interval_ms", DEFAULT_POLL_INTERVAL_MS),
        poll_attempts=numbers.get("poll_attempts", DEFAULT_POLL_ATTEMPTS),
        concurrency=numbers.get("concurrency", DEFAULT_CONCURRENCY),
        region=values["region"].strip() or DEFAULT_REGION,
        max_segments_per_second=numbers.get("max_segments_per_second"),
        request_timeout_s=numbers.get("request_timeout_s", DEFAULT_REQUEST_TIMEOUT_S),
        callback_base_url=values["callback_base_url"].strip() or None,
    )
    return connection, problems


def _changes(values: dict[str, str]) -> tuple[ConnectionChanges, list[Problem]]:
    """The edit form as changes: every setting as shown ("" clears an optional one), the
    token only when one was typed, an emptied segment cap as "no cap"; and the problems
    of numbers that are not numbers (those settings left as they are)."""
    numbers, problems = _numbers(values)
    changes = ConnectionChanges(
        account_sid=values["account_sid"].strip(),
        auth_token=values["auth_token"].strip() or None,
        from_number=values["from_number"].strip(),
        messaging_service_sid=values["messaging_service_sid"].strip(),
        api_key_sid=values["api_key_sid"].strip(),
        base_url=values["base_url"].strip(),
        poll_interval_ms=numbers.get("poll_interval_ms"),
        poll_attempts=numbers.get("poll_attempts"),
        concurrency=numbers.get("concurrency"),
        region=values["region"].strip(),
        max_segments_per_second=numbers.get("max_segments_per_second", 0.0),
        request_timeout_s=numbers.get("request_timeout_s"),
        callback_base_url=values["callback_base_url"].strip(),
    )
    return changes, problems


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
