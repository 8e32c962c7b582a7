"""OptOuts, the run's view of one sender's opt-outs, over a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime

from smslink.domain.models import OptOut
from smslink.engine.optouts import OPTED_OUT, OptOuts, refused_message, skipped_message
from smslink.store import Store

SENDER = "+15005550006"
PHONE = "+12125550101"
TWILIO_SAYS = "Attempt to send to unsubscribed recipient"
FIRST = datetime(2026, 11, 26, 23, 59, tzinfo=UTC)
LATER = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def test_loaded_once_for_its_sender(store: Store):
    store.catalogue.add_optout(OptOut(SENDER, PHONE, FIRST))
    store.catalogue.add_optout(OptOut("MG" + "0" * 32, "+12125550102", FIRST))

    optouts = OptOuts(store, SENDER)
    store.catalogue.add_optout(OptOut(SENDER, "+12125550103", FIRST))  # after loading: not seen

    assert len(optouts) == 1
    assert optouts.is_opted_out(PHONE)
    assert not optouts.is_opted_out("+12125550102")  # another sender's
    assert not optouts.is_opted_out("+12125550103")
    assert optouts.skip_reason("+12125550102") is None


def test_record_stores_at_once_and_later_checks_skip(store: Store):
    optouts = OptOuts(store, SENDER, run_id=4, clock=lambda: FIRST)

    said = optouts.record(PHONE, TWILIO_SAYS)

    assert said == refused_message(PHONE, SENDER, TWILIO_SAYS)
    assert f"{PHONE} unsubscribed from messages from {SENDER}" in said
    assert f"Twilio error {OPTED_OUT}: {TWILIO_SAYS}" in said
    assert store.catalogue.get_optout(SENDER, PHONE) == OptOut(
        SENDER, PHONE, FIRST, 4, "twilio", TWILIO_SAYS
    )
    assert optouts.is_opted_out(PHONE)
    assert optouts.skip_reason(PHONE) == (
        f"not sent: {PHONE} opted out of messages from {SENDER} (replied STOP; Twilio error "
        "21610, first seen 2026-11-26); if they opted back in, remove their opt-out for "
        "this sender"
    )
    assert OptOuts(store, SENDER).is_opted_out(PHONE)  # the next run knows too


def test_recording_twice_keeps_the_first_sighting(store: Store):
    elsewhere = OptOuts(store, SENDER, run_id=1, clock=lambda: FIRST)
    here = OptOuts(store, SENDER, run_id=2, clock=lambda: LATER)  # loaded before run 1 wrote
    elsewhere.record(PHONE, TWILIO_SAYS)

    here.record(PHONE, TWILIO_SAYS)
    here.record(PHONE, "said again")

    assert store.catalogue.list_optouts() == [
        OptOut(SENDER, PHONE, FIRST, 1, "twilio", TWILIO_SAYS)
    ]
    assert "first seen 2026-11-26" in (here.skip_reason(PHONE) or "")


def test_messages_say_how_to_undo_it_without_naming_a_command(store: Store):
    optout = OptOut("My Shop", PHONE, FIRST)
    for said in (skipped_message(optout), refused_message(PHONE, "My Shop", None)):
        assert "opt back in" in said or "opted back in" in said
        assert "remove their opt-out for this sender" in said
        assert "smslink" not in said and "--" not in said  # results are read outside a shell
    assert refused_message(PHONE, "My Shop", None).startswith(
        f"not sent: {PHONE} unsubscribed from messages from My Shop (replied STOP; Twilio "
        "error 21610)."
    )


def test_an_optout_recorded_elsewhere_is_honoured_within_a_look(store: Store, monkeypatch):
    """Another worker (or a STOP reply the service took) records an opt-out while this
    run sends: the run skips that recipient from its next look on (every second)."""
    monkeypatch.setattr("smslink.engine.optouts.LOOK_AGAIN_S", 0.0)
    now = datetime.now(UTC)
    ours = OptOuts(store, SENDER, run_id=1, clock=lambda: now)
    assert ours.skip_reason(PHONE) is None

    elsewhere = OptOuts(store, SENDER, run_id=2, clock=lambda: now)
    elsewhere.record(PHONE, TWILIO_SAYS)
    store.catalogue.add_optout(OptOut("MG" + "0" * 32, "+12125550102", now))  # another sender

    assert ours.skip_reason(PHONE) is not None
    assert "STOP" in (ours.skip_reason(PHONE) or "")
    assert ours.skip_reason("+12125550102") is None
