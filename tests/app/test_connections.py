"""Connections through the front door: rules by field, no secret in what comes back, and
the Test button's outcomes against real servers."""

from __future__ import annotations

import dataclasses

import pytest

from smslink.app import Smslink
from smslink.app.connections import ConnectionChanges, ConnectionTestOutcome
from smslink.domain.errors import InvalidInput
from smslink.simulator import SimulatorConfig
from tests.app.conftest import TOKEN, connection
from tests.outage import simulator_behind_proxy


def test_add_normalises_and_views_never_hold_the_token(smslink: Smslink, base_url: str) -> None:
    view = smslink.connections.add(connection(base_url + "/", region="gb"))

    assert view.region == "GB" and view.base_url == base_url and view.secret_set
    fields = {f.name for f in dataclasses.fields(view)}
    assert "auth_token" not in fields
    assert TOKEN not in repr(smslink.connections.list()) + repr(smslink.connections.show("sim"))


def test_every_problem_comes_back_by_field_and_nothing_is_stored(smslink: Smslink) -> None:
    bad = connection("http://example.com/x", account_sid="nope", from_number="??")

    with pytest.raises(InvalidInput) as refused:
        smslink.connections.add(bad)

    assert {p.field for p in refused.value.problems} == {"account_sid", "from_number", "base_url"}
    assert smslink.connections.list() == []


def test_update_changes_only_what_is_given_and_clears_with_empty(
    smslink: Smslink, base_url: str
) -> None:
    smslink.connections.add(connection(base_url, messaging_service_sid="MG" + "1" * 32))

    view = smslink.connections.update(
        "sim", ConnectionChanges(concurrency=7, messaging_service_sid="")
    )

    assert (view.concurrency, view.messaging_service_sid) == (7, None)
    assert view.from_number == "+15005550006" and view.poll_interval_ms == 100
    with pytest.raises(InvalidInput, match="new secret is empty"):
        smslink.connections.update("sim", ConnectionChanges(auth_token="  "))
    with pytest.raises(InvalidInput) as refused:
        smslink.connections.check("sim", ConnectionChanges(concurrency=0))
    assert [p.field for p in refused.value.problems] == ["concurrency"]


def test_the_test_button_says_what_answered(smslink: Smslink, base_url: str) -> None:
    smslink.connections.add(connection(base_url))
    smslink.connections.add(connection(base_url, name="wrong", auth_token="not-the-token"))
    smslink.connections.add(connection("http://127.0.0.1:9/2010-04-01", name="closed"))

    ok = smslink.connections.test("sim")
    refused = smslink.connections.test("wrong")
    unreachable = smslink.connections.test("closed", timeout_s=2)

    assert ok.ok and ok.account_sid and ok.account_status == "active"
    assert (refused.outcome, refused.code) == (ConnectionTestOutcome.REFUSED, 20003)
    assert (
        unreachable.outcome is ConnectionTestOutcome.UNREACHABLE
        and "cannot connect" in unreachable.message
    )


def test_a_server_that_is_not_twilio_is_named_as_such(smslink: Smslink) -> None:
    with simulator_behind_proxy(SimulatorConfig(auth_token=TOKEN)) as outage:
        outage.status = 404
        smslink.connections.add(connection(outage.base_url, name="web"))

        result = smslink.connections.test("web")

    assert result.outcome is ConnectionTestOutcome.NOT_TWILIO and result.code == 404
