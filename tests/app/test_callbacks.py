"""Status callbacks through the front door: only Twilio's signature lets one in, for the
URL smslink gave Twilio (with or without its retry fragment) or the one the server saw."""

from __future__ import annotations

from datetime import UTC, datetime

from smslink.app import Smslink
from smslink.app.callbacks import CallbackOutcome, StatusCallback
from smslink.domain.models import Delivery, Progress, ResultStatus, Stage, Touchpoint
from smslink.engine import RunRequest
from smslink.twilio.signature import compute_signature
from tests.app.conftest import TOKEN, connection

BASE = "https://sms.example.com"
URL = f"{BASE}/twilio/status/sim#rc=5&rp=all"


def _form(sid: str = "SMx", status: str = "delivered", **more: str) -> list[tuple[str, str]]:
    return [("MessageSid", sid), ("MessageStatus", status), ("AccountSid", "AC1"), *more.items()]


def _callback(form: list[tuple[str, str]], *, url: str = URL, token: str = TOKEN, **kw: object):
    return StatusCallback(
        "sim",
        form,
        compute_signature(token, url, dict(form)),
        **kw,  # type: ignore[arg-type]
    )


def _tracked_delivery(smslink: Smslink, tmp_path, base_url: str) -> int:
    """A run with one delivery being tracked as SMx (written as the tracker would)."""
    smslink.connections.add(connection(base_url, callback_base_url=BASE))
    smslink.touchpoints.add(Touchpoint("t", "sim", "Hi", "phone", {}))
    audience = tmp_path / "a.csv"
    audience.write_text("phone\n+12125550100\n")
    run_id = smslink.runs.start(RunRequest("t", audience, tmp_path / "out.csv"))
    store = smslink._store
    store.deliveries.add_deliveries(
        run_id, [Delivery(run_id, 0, {"phone": "+12125550100"}, "+12125550100", "Hi", 1)], ["phone"]
    )
    store.deliveries.claim_pending(run_id, 1, datetime.now(UTC))
    store.deliveries.save_progress(
        [Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid="SMx")]
    )
    return run_id


def test_a_signed_callback_is_applied_once(smslink: Smslink, tmp_path, base_url: str) -> None:
    run_id = _tracked_delivery(smslink, tmp_path, base_url)
    callback = _callback(_form(), idempotency_token="tok-1")

    assert smslink.callbacks.receive(callback) is CallbackOutcome.APPLIED
    assert smslink.callbacks.receive(callback) is CallbackOutcome.DUPLICATE
    [row] = smslink.runs.deliveries(run_id).deliveries
    assert (row.stage, row.status) == (Stage.DONE, ResultStatus.DELIVERED)


def test_the_signature_may_be_over_the_url_without_its_fragment_or_as_the_server_saw_it(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    _tracked_delivery(smslink, tmp_path, base_url)
    bare = _callback(_form(status="sent"), url=URL.partition("#")[0])
    assert smslink.callbacks.receive(bare) is CallbackOutcome.APPLIED
    seen = "http://10.0.0.5:8000/twilio/status/sim"
    proxied = _callback(_form(status="delivered"), url=seen, request_url=seen)
    assert smslink.callbacks.receive(proxied) is CallbackOutcome.APPLIED


def test_forged_missing_or_misdirected_callbacks_are_refused(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    run_id = _tracked_delivery(smslink, tmp_path, base_url)
    form = _form()
    refused = [
        _callback(form, token="not-the-token"),
        _callback(form, url=f"{BASE}/twilio/status/other"),
        StatusCallback("sim", form, None),
        StatusCallback("sim", form, ""),
        StatusCallback("nope", form, compute_signature(TOKEN, URL, dict(form))),
        # Signed, then a field changed on the way.
        StatusCallback("sim", _form(status="failed"), compute_signature(TOKEN, URL, dict(form))),
    ]
    for callback in refused:
        assert smslink.callbacks.receive(callback) is CallbackOutcome.REFUSED
    [row] = smslink.runs.deliveries(run_id).deliveries
    assert (row.stage, row.twilio_status) == (Stage.TRACKING, "queued")


def test_unknown_messages_and_unreadable_forms_are_accepted_and_ignored(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    _tracked_delivery(smslink, tmp_path, base_url)
    assert smslink.callbacks.receive(_callback(_form(sid="SMother"))) is CallbackOutcome.UNKNOWN
    assert smslink.callbacks.receive(_callback([("Foo", "bar")])) is CallbackOutcome.IGNORED
