"""Per-sender throughput: sender_mps segments per second, a queue, 21611 past its depth.

Most checks drive SimulatorState with an injected clock, so hours of backlog take no time;
the HTTP ones go through the official SDK like any client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest
from simkit import ACCOUNT_SID, FROM, OTHER_ACCOUNT_SID, SERVICE_SID, TOKEN, Sim
from twilio.base.exceptions import TwilioRestException

from smslink.simulator import SimulatorConfig, SimulatorServer, SimulatorState
from smslink.simulator.errors import TwilioError
from smslink.simulator.state import Message

OTHER_FROM = "+15551230001"
T0 = 1_700_000_000.0
GSM_2_SEGMENTS = "a" * 161  # 153 + 8 septets
UCS2_3_SEGMENTS = "é" * 40 + "Ж" * 100  # 140 UTF-16 units > 2 x 67


class Clock:
    """A settable clock for SimulatorState: time moves only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def new_state(**config: object) -> tuple[SimulatorState, Clock]:
    clock = Clock()
    settings = SimulatorConfig(owned_numbers={FROM, OTHER_FROM}, queued_s=0.1, **config)
    return SimulatorState(settings, clock=clock), clock


def send(
    state: SimulatorState,
    body: str = "Hi",
    sender: str | None = FROM,
    *,
    to: str | None = None,
    account: str = ACCOUNT_SID,
    service_sid: str | None = None,
) -> Message:
    """Create a message as the POST handler does once the request is validated."""
    return state.create(
        account,
        to=to or f"+1415555{len(state.messages):04d}",
        from_=sender,
        service_sid=service_sid,
        body=body,
    )


def leaves_queued(state: SimulatorState, msg: Message) -> float:
    """When `msg` stops showing 'queued', found from its status alone (to 1 ms)."""
    lo, hi = msg.created, msg.created + 10_000.0
    assert state.snapshot(msg, hi).status != "queued"
    while hi - lo > 1e-4:
        mid = (lo + hi) / 2
        if state.snapshot(msg, mid).status in ("accepted", "queued"):
            lo = mid
        else:
            hi = mid
    return hi


def test_unlimited_senders_keep_the_plain_queued_phase() -> None:
    state, _clock = new_state()
    burst = [send(state) for _ in range(50)]
    assert all(msg.dispatch == pytest.approx(T0 + 0.1) for msg in burst)


def test_burst_from_one_sender_is_dispatched_at_its_rate() -> None:
    state, _clock = new_state(sender_mps=4)
    burst = [send(state) for _ in range(12)]
    first = leaves_queued(state, burst[0])
    assert first == pytest.approx(T0 + 0.1, abs=1e-3)  # no wait for the first
    for k, msg in enumerate(burst):
        left = leaves_queued(state, msg)
        assert left >= first + k / 4 - 1e-3
        assert left == pytest.approx(first + k / 4, abs=1e-3)  # and no later than its turn
        # The rest of its life follows from its dispatch: sending, sent, delivered.
        assert state.snapshot(msg, left + 0.01).status == "sending"
        assert state.snapshot(msg, left + 0.21).status == "sent"
        assert state.snapshot(msg, left + 0.71).status == "delivered"


def test_status_is_read_off_the_clock_while_queued() -> None:
    state, clock = new_state(sender_mps=1)
    msgs = [send(state) for _ in range(3)]
    clock.now = T0 + 1.5
    assert [state.snapshot(m).status for m in msgs] == ["delivered", "sent", "queued"]


def test_multi_segment_bodies_take_one_turn_per_segment() -> None:
    state, _clock = new_state(sender_mps=1)
    long_gsm = send(state, GSM_2_SEGMENTS)
    long_ucs2 = send(state, UCS2_3_SEGMENTS)
    short = send(state, "Hi")
    assert (long_gsm.segments, long_ucs2.segments, short.segments) == (2, 3, 1)
    assert long_gsm.dispatch == pytest.approx(T0 + 0.1)
    assert long_ucs2.dispatch == pytest.approx(T0 + 0.1 + 2)  # after 2 segments at 1 MPS
    assert short.dispatch == pytest.approx(T0 + 0.1 + 5)  # after 2 + 3


def test_queue_drains_while_the_sender_is_idle() -> None:
    state, clock = new_state(sender_mps=1)
    for _ in range(3):
        send(state)
    clock.now = T0 + 10  # long after the backlog was sent
    assert send(state).dispatch == pytest.approx(T0 + 10.1)
    clock.now = T0 + 10.4  # one turn (1 s) has not passed yet
    assert send(state).dispatch == pytest.approx(T0 + 11.1)


def test_senders_and_accounts_do_not_share_a_queue() -> None:
    state, _clock = new_state(sender_mps=1)
    mine = [send(state) for _ in range(3)]
    other_sender = send(state, sender=OTHER_FROM)
    other_account = send(state, account=OTHER_ACCOUNT_SID)
    assert mine[-1].dispatch == pytest.approx(T0 + 2.1)
    assert other_sender.dispatch == pytest.approx(T0 + 0.1)
    assert other_account.dispatch == pytest.approx(T0 + 0.1)


def test_messaging_service_queues_on_its_assigned_sender() -> None:
    state, _clock = new_state(sender_mps=2)
    assert state.config.service_sender == FROM
    send(state)
    send(state)
    via_service = send(state, sender=None, service_sid=SERVICE_SID)
    assert via_service.sender == FROM
    assert via_service.dispatch == pytest.approx(T0 + 0.1 + 1.0)  # third turn at 2 MPS
    assert state.snapshot(via_service, T0 + 0.01).status == "accepted"
    assert state.snapshot(via_service, T0 + 0.5).status == "queued"
    assert state.snapshot(via_service, T0 + 1.15).status == "sending"


def test_overflow_past_the_queue_depth_is_21611_and_creates_nothing() -> None:
    state, clock = new_state(sender_mps=1, sender_queue_s=3)
    for _ in range(3):  # exactly 3 s of backlog fits
        send(state)
    before = (len(state.messages), dict(state.stats.messages_by_to))
    with pytest.raises(TwilioError) as caught:
        send(state, to="+14155559999")
    assert (caught.value.code, caught.value.status) == (21611, 400)
    assert (len(state.messages), dict(state.stats.messages_by_to)) == before
    assert state.stats.queue_full == 1
    send(state, GSM_2_SEGMENTS, sender=OTHER_FROM)  # segments count: 2 s of backlog...
    with pytest.raises(TwilioError):
        send(state, GSM_2_SEGMENTS, sender=OTHER_FROM)  # ...so 2 more would make 4 s
    send(state, sender=OTHER_FROM)  # while 1 more makes exactly 3 s
    clock.now = T0 + 1  # one segment went out: room for one more
    send(state)
    with pytest.raises(TwilioError):
        send(state)


def test_queued_status_over_http_follows_the_injected_clock() -> None:
    """The HTTP answers (fetch and list) use the same dispatch times."""
    state, clock = new_state(sender_mps=2)

    async def scenario() -> list[str]:
        async with SimulatorServer(state.config, state=state) as server:
            auth = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, TOKEN)}
            messages = f"{server.base_url}/Accounts/{ACCOUNT_SID}/Messages"
            async with aiohttp.ClientSession(headers=auth) as session:
                sids = []
                for i in range(3):
                    form = {"To": f"+1415555010{i}", "From": FROM, "Body": "x"}
                    async with session.post(f"{messages}.json", data=form) as response:
                        assert response.status == 201
                        created = await response.json()
                        assert created["status"] == "queued"
                        sids.append(created["sid"])
                clock.now = T0 + 0.7  # turns at 0.1, 0.6 and 1.1 s
                seen = []
                for sid in sids:
                    async with session.get(f"{messages}/{sid}.json") as response:
                        seen.append((await response.json())["status"])
                async with session.get(f"{messages}.json") as response:
                    listed = [m["status"] for m in (await response.json())["messages"]]
                assert listed == seen[::-1]  # newest first
                return seen

    assert asyncio.run(scenario()) == ["sent", "sending", "queued"]


def test_sdk_sees_sender_queue_overflow_as_21611(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim(
        SimulatorConfig(owned_numbers={FROM, OTHER_FROM}, sender_mps=0.1, sender_queue_s=30)
    )
    client = sim.client()
    held = [client.messages.create(to=f"+1415555020{i}", from_=FROM, body="Hi") for i in range(3)]
    assert [m.status for m in held] == ["queued"] * 3
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="+14155550299", from_=FROM, body="Hi")
    assert (caught.value.code, caught.value.status) == (21611, 400)
    assert {m.sid for m in client.messages.list()} == {m.sid for m in held}  # nothing created
    stats = sim.stats()
    assert (stats["messages"], stats["posts"], stats["queue_full"]) == (3, 4, 1)
    assert "+14155550299" not in stats["messages_by_to"]
    # The queue is per sender: another number of the account still sends.
    assert client.messages.create(to="+14155550299", from_=OTHER_FROM, body="Hi").sid
    # The magic queue-full sender answers 21611 whatever the configuration.
    with pytest.raises(TwilioRestException) as magic:
        client.messages.create(to="+14155550298", from_="+15005550008", body="Hi")
    assert (magic.value.code, magic.value.status) == (21611, 400)


def test_sdk_burst_waits_in_queued(start_sim: Callable[..., Sim]) -> None:
    """In real time: at 5 MPS the third of a burst is still queued right after it."""
    sim = start_sim(SimulatorConfig(queued_s=0.03, sending_s=0.03, sent_s=0.06, sender_mps=5))
    client = sim.client()
    burst = [client.messages.create(to=f"+1415555030{i}", from_=FROM, body="Hi") for i in range(3)]
    assert client.messages(burst[2].sid).fetch().status == "queued"  # its turn is 0.4 s away
