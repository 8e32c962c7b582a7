"""Status lifecycle and outcomes: derived from age and a hash of the recipient."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from simkit import Sim

from smslink.simulator import SimulatorConfig
from smslink.simulator.lifecycle import Fate, Outcome, decide_fate, snapshot

ORDER = ["accepted", "queued", "sending", "sent", "delivered", "undelivered", "failed"]
TIMING = SimulatorConfig(queued_s=1, sending_s=2, sent_s=4)


@pytest.mark.parametrize(
    ("age", "status", "updated", "sent"),
    [
        (0.0, "queued", 0, None),
        (0.99, "queued", 0, None),
        (1.0, "sending", 1, None),
        (3.0, "sent", 3, 3),
        (6.9, "sent", 3, 3),
        (7.0, "delivered", 7, 3),
        (1e6, "delivered", 7, 3),
    ],
)
def test_delivered_message_walks_every_phase(
    age: float, status: str, updated: float, sent: float | None
) -> None:
    snap = snapshot(TIMING, Fate(Outcome.DELIVERED), 100.0, False, 100.0 + age)
    assert (snap.status, snap.updated_at, snap.sent_at) == (
        status,
        100 + updated,
        sent and 100 + sent,
    )


def test_failed_message_fails_after_sending_and_is_never_sent() -> None:
    fate = Fate(Outcome.FAILED, 30008)
    assert snapshot(TIMING, fate, 0, False, 2.5).status == "sending"
    snap = snapshot(TIMING, fate, 0, False, 3.0)
    assert (snap.status, snap.sent_at, snap.final) == ("failed", None, True)


def test_stuck_message_stays_sent_forever() -> None:
    snap = snapshot(TIMING, Fate(Outcome.STUCK), 0, False, 1e9)
    assert (snap.status, snap.final) == ("sent", False)


def test_messaging_service_message_is_accepted_first() -> None:
    fate = Fate(Outcome.DELIVERED)
    assert snapshot(TIMING, fate, 0, True, 0.4).status == "accepted"
    assert snapshot(TIMING, fate, 0, True, 0.6).status == "queued"


def test_outcome_shares_are_roughly_honoured() -> None:
    config = SimulatorConfig(undelivered_share=0.2, failed_share=0.1, stuck_share=0.05, seed=7)
    fates = [decide_fate(config, f"+1415555{i:04d}") for i in range(4000)]
    shares = Counter(f.outcome for f in fates)
    assert abs(shares[Outcome.UNDELIVERED] / 4000 - 0.2) < 0.03
    assert abs(shares[Outcome.FAILED] / 4000 - 0.1) < 0.03
    assert abs(shares[Outcome.STUCK] / 4000 - 0.05) < 0.02
    codes = {f.error_code for f in fates if f.outcome is Outcome.UNDELIVERED}
    assert codes == {30003, 30004, 30005, 30006, 30007, 30008}
    assert all(f.error_code is None for f in fates if f.outcome is Outcome.DELIVERED)


def test_outcome_depends_only_on_seed_and_recipient() -> None:
    config = SimulatorConfig(undelivered_share=0.5)
    numbers = [f"+1415555{i:04d}" for i in range(200)]
    first = [decide_fate(config, n) for n in numbers]
    assert [decide_fate(config, n) for n in reversed(numbers)] == first[::-1]
    reseeded = SimulatorConfig(undelivered_share=0.5, seed=1)
    assert [decide_fate(reseeded, n) for n in numbers] != first


def _watch(sim: Sim, sid: str, seconds: float = 0.4) -> list[dict]:
    """Every distinct state a message shows while polled for `seconds`."""
    seen: list[dict] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = sim.client().messages(sid).fetch()
        if not seen or seen[-1]["status"] != msg.status:
            seen.append({"status": msg.status, "msg": msg})
        time.sleep(0.005)
    return seen


def _statuses(seen: list[dict]) -> list[str]:
    return [s["status"] for s in seen]


def test_lifecycle_moves_forward_to_delivered(fast_sim: Sim) -> None:
    sid = fast_sim.send("+14155550100")["sid"]
    seen = _watch(fast_sim, sid)
    statuses = _statuses(seen)
    assert statuses == sorted(statuses, key=ORDER.index) and statuses[-1] == "delivered"
    final = seen[-1]["msg"]
    assert final.date_sent is not None and final.price == "-0.00790" and final.price_unit == "USD"
    assert final.date_updated >= final.date_sent >= final.date_created


@pytest.mark.parametrize(
    ("share", "final_status", "codes"),
    [
        ("undelivered_share", "undelivered", range(30003, 30009)),
        ("failed_share", "failed", range(30001, 30009)),
    ],
)
def test_unlucky_messages_end_with_an_error_code(
    start_sim, share: str, final_status: str, codes: range
) -> None:
    config = SimulatorConfig(queued_s=0.03, sending_s=0.03, sent_s=0.06, **{share: 1.0})
    sim = start_sim(config)
    sid = sim.send("+14155550100", "a" * 200)["sid"]
    seen = _watch(sim, sid)
    final = seen[-1]["msg"]
    assert final.status == final_status and final.error_code in codes
    assert final.error_message
    if final_status == "failed":
        assert "sent" not in _statuses(seen) and final.date_sent is None
        assert final.price == "0.00000"
    else:
        assert final.price == "-0.01580"  # two segments


def test_stuck_messages_stay_sent(start_sim) -> None:
    sim = start_sim(SimulatorConfig(queued_s=0, sending_s=0, sent_s=0, stuck_share=1.0))
    sid = sim.send("+14155550100")["sid"]
    time.sleep(0.02)
    msg = sim.client().messages(sid).fetch()
    assert (msg.status, msg.price, msg.error_code) == ("sent", None, None)


def test_create_always_answers_the_first_status(start_sim) -> None:
    sim = start_sim(SimulatorConfig(queued_s=0, sending_s=0, sent_s=0))
    msg = sim.send("+14155550100")
    assert msg["status"] == "queued"
    assert sim.client().messages(msg["sid"]).fetch().status == "delivered"


def test_same_recipient_gets_the_same_outcome(start_sim) -> None:
    sim = start_sim(SimulatorConfig(queued_s=0, sending_s=0, sent_s=0, undelivered_share=0.5))
    client = sim.client()
    for i in range(10):
        to = f"+1415555{i:04d}"
        first, second = (sim.send(to)["sid"] for _ in range(2))
        a, b = client.messages(first).fetch(), client.messages(second).fetch()
        assert (a.status, a.error_code) == (b.status, b.error_code)
