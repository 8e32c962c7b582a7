"""Every simulator answer validates against Twilio's official OpenAPI spec.

The simulator is what every other test stands on, so its bodies are judged by Twilio's own
description of them (openapi-core, strict: all declared properties, none undeclared), in
every state a message can be in and on every kind of list page. Error bodies, which the spec
does not describe, are judged by Twilio's documented error shape.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conformance.recording import (
    ACCOUNT_SID,
    API_ROOT,
    FAST,
    SERVICE_SID,
    TOKEN,
    Exchange,
    RecordingSimulator,
)
from tests.conformance.twilio_spec import EXAMPLES, TwilioSpec

LIST = f"{API_ROOT}/Accounts/{ACCOUNT_SID}/Messages.json"
ACCOUNT = f"{API_ROOT}/Accounts/{ACCOUNT_SID}.json"
#: The simulator never echoes the auth token (it is a secret; Twilio does return it). That is
#: the one documented property of an Account its answers leave out.
ACCOUNT_WITHHELD = ["$: 'auth_token' is a required property"]


def _answer_problems(spec: TwilioSpec, sim: RecordingSimulator) -> list[str]:
    """Spec problems of every answer of the 2010 API the simulator gave so far."""
    found: list[str] = []
    for exchange in sim.api_exchanges():
        problems = spec.response_problems(exchange)
        if exchange.path == ACCOUNT and exchange.status == 200 and problems == ACCOUNT_WITHHELD:
            continue
        found += [f"{exchange}: {problem}" for problem in problems]
    return found


def test_spec_loads_once_and_fast_enough(twilio_spec: TwilioSpec) -> None:
    """The whole conformance suite shares one load; keep an eye on what it costs."""
    print(f"openapi-core loaded and validated the spec in {twilio_spec.load_seconds:.2f} s")
    assert twilio_spec.load_seconds < 30


def test_created_and_fetched_messages_match_the_spec(
    twilio_spec: TwilioSpec, recording_sim: RecordingSimulator
) -> None:
    sim = recording_sim
    created = [
        sim.send("+14155550100"),  # SMS from a number: queued
        sim.send("+14155550101", "😀 UCS-2", MessagingServiceSid=SERVICE_SID),  # accepted
        sim.send("+14155550102", "", MediaUrl="https://example.com/a.png"),  # MMS, no body
        sim.send("+14155550103", "x" * 1600),  # the longest body: 11 segments
    ]
    assert [m["status"] for m in created] == ["queued", "accepted", "queued", "queued"]
    assert created[1]["from"] is None and created[2]["sid"].startswith("MM")
    time.sleep(0.2)
    for msg in created:
        status, fetched = sim.http("GET", msg["uri"])
        assert (status, fetched["status"]) == (200, "delivered")
        assert fetched["price"] is not None and fetched["date_sent"] is not None
    assert [ex.status for ex in sim.api_exchanges()] == [201] * 4 + [200] * 4
    assert _answer_problems(twilio_spec, sim) == []


@pytest.mark.parametrize(
    ("outcome", "status"),
    [("undelivered_share", "undelivered"), ("failed_share", "failed"), ("stuck_share", "sent")],
)
def test_messages_in_their_other_final_states_match_the_spec(
    twilio_spec: TwilioSpec,
    start_recording: Callable[..., RecordingSimulator],
    outcome: str,
    status: str,
) -> None:
    """Failed and undelivered bodies carry an integer error_code; stuck ones stay `sent`."""
    sim = start_recording(dataclasses.replace(FAST, **{outcome: 1.0}))
    msg = sim.send("+14155550100")
    time.sleep(0.2)
    _, fetched = sim.http("GET", msg["uri"])
    assert fetched["status"] == status
    assert isinstance(fetched["error_code"], int) is (status != "sent")
    assert _answer_problems(twilio_spec, sim) == []


def test_first_middle_last_and_empty_pages_match_the_spec(
    twilio_spec: TwilioSpec, recording_sim: RecordingSimulator
) -> None:
    sim = recording_sim
    sids = [sim.send("+14155550100", f"m{i}")["sid"] for i in range(5)]
    time.sleep(0.15)  # sent, so the DateSent filters have something to match
    _, first = sim.http("GET", f"{LIST}?To=%2B14155550100&From=%2B15005550006&PageSize=2")
    _, middle = sim.http("GET", first["next_page_uri"])
    _, last = sim.http("GET", middle["next_page_uri"])
    _, back = sim.http("GET", last["previous_page_uri"])
    day = time.strftime("%Y-%m-%d", time.gmtime())
    _, dated = sim.http("GET", f"{LIST}?DateSent%3E={day}&PageSize=1000")
    _, empty = sim.http("GET", f"{LIST}?To=%2B14155559999")
    pages = [first, middle, last, back, dated, empty]
    assert [[m["sid"] for m in page["messages"]] for page in pages[:3]] == [
        [sids[4], sids[3]],
        [sids[2], sids[1]],
        [sids[0]],
    ]
    assert (first["previous_page_uri"], last["next_page_uri"]) == (None, None)
    assert len(dated["messages"]) == 5
    assert (empty["messages"], empty["next_page_uri"], empty["previous_page_uri"]) == (
        [],
        None,
        None,
    )
    assert _answer_problems(twilio_spec, sim) == []


def test_account_matches_the_spec_except_the_withheld_token(
    twilio_spec: TwilioSpec, recording_sim: RecordingSimulator
) -> None:
    status, account = recording_sim.http("GET", ACCOUNT)
    assert status == 200 and "auth_token" not in account
    [exchange] = recording_sim.api_exchanges()
    assert twilio_spec.response_problems(exchange) == ACCOUNT_WITHHELD


OWN = (ACCOUNT_SID, TOKEN)
SEND = {"To": "+14155550100", "From": "+15005550006", "Body": "x"}
MESSAGE = f"{API_ROOT}/Accounts/{ACCOUNT_SID}/Messages"


@pytest.mark.parametrize(
    ("method", "path", "form", "auth", "status", "code"),
    [
        ("GET", LIST, None, None, 401, 20003),  # no credentials at all
        ("GET", LIST, None, (ACCOUNT_SID, "wrong"), 401, 20003),
        ("POST", LIST, SEND, None, 401, 20003),
        ("GET", f"{API_ROOT}/Accounts/AC{'f' * 32}.json", None, OWN, 401, 20003),
        ("GET", f"{MESSAGE}/SM{'0' * 32}.json", None, OWN, 404, 20404),
        ("GET", f"{API_ROOT}/Accounts/ACnope/Messages.json", None, OWN, 404, 20404),
        ("GET", f"{API_ROOT}/Accounts/{ACCOUNT_SID}/Calls.json", None, OWN, 404, 20404),
        ("GET", f"{LIST}?PageSize=1001", None, OWN, 400, 20007),
        ("GET", f"{LIST}?PageSize=0", None, OWN, 400, 20001),
        ("GET", f"{LIST}?PageToken=PASM{'0' * 32}", None, OWN, 400, 20001),
        ("POST", LIST, {**SEND, "To": "+15005550001"}, OWN, 400, 21211),
        ("POST", LIST, {**SEND, "Body": ""}, OWN, 400, 21602),
    ],
)  # fmt: skip
def test_error_answers_have_twilios_error_shape(
    twilio_spec: TwilioSpec,
    recording_sim: RecordingSimulator,
    method: str,
    path: str,
    form: dict[str, str] | None,
    auth: tuple[str, str] | None,
    status: int,
    code: int,
) -> None:
    """The spec declares no error answers, so these follow Twilio's documented body.

    Every magic number's body is also checked, through the SDK, in test_conf_sdk.
    """
    answer = recording_sim.http(method, path, form, auth=auth)
    assert (answer[0], answer[1]["code"]) == (status, code)
    [exchange] = recording_sim.api_exchanges()
    assert twilio_spec.response_problems(exchange) == []


# -- the referee is calibrated on real Twilio bodies, and is not vacuous -----------------


def _as_answer(method: str, path: str, status: int, body: Any) -> Exchange:
    return Exchange(
        method=method,
        raw_path=path,
        headers={},
        body=b"",
        status=status,
        content_type="application/json",
        data=json.dumps(body).encode(),
    )


def _example(name: str) -> Any:
    path = EXAMPLES / name
    if not path.is_file():
        pytest.fail(f"Twilio's example bodies not found in {EXAMPLES}")
    return json.loads(path.read_text())


def test_real_twilio_bodies_pass_the_same_strict_checks(twilio_spec: TwilioSpec) -> None:
    """What the simulator is held to, real answers from Twilio meet: no check is invented."""
    created = _example("message_create_example.json")
    fetched = _example("message_example.json")
    page = _example("message_list_example.json")
    account = created["account_sid"]
    messages = f"{API_ROOT}/Accounts/{account}/Messages"
    answers = [
        _as_answer("POST", f"{messages}.json", 201, created),
        _as_answer("GET", f"{messages}/{fetched['sid']}.json", 200, fetched),
        _as_answer("GET", page["uri"], 200, page),
    ]
    for answer in answers:
        assert twilio_spec.response_problems(answer) == [], answer
    for example in _example("error_examples.json"):
        assert twilio_spec.error_problems(example["body"], example["http_status"]) == []
    single = _example("error_example.json")
    assert twilio_spec.error_problems(single, single["status"]) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.update(num_segments=1), "1 is not of type 'string'"),
        (lambda m: m.update(error_code="30003"), "'30003' is not of type 'integer'"),
        (lambda m: m.update(date_created="2024-01-01T00:00:00Z"), "is not a 'date-time-rfc-2822'"),
        (lambda m: m.update(status="done"), "'done' is not one of"),
        (lambda m: m.update(sid="SM123"), "'SM123' does not match"),
        (lambda m: m.pop("price"), "'price' is a required property"),
        (lambda m: m.update(extra=1), "'extra' was unexpected"),
        (lambda m: m["subresource_uris"].update(media=1), "1 is not of type 'string'"),
    ],
)
def test_a_body_that_breaks_the_spec_is_caught(
    twilio_spec: TwilioSpec, change: Callable[[dict[str, Any]], object], expected: str
) -> None:
    body = _example("message_create_example.json")
    change(body)
    answer = _as_answer("POST", f"{API_ROOT}/Accounts/{ACCOUNT_SID}/Messages.json", 201, body)
    problems = twilio_spec.response_problems(answer)
    assert any(expected in problem for problem in problems), problems


def test_a_page_with_an_extra_top_level_key_is_caught(twilio_spec: TwilioSpec) -> None:
    """The SDK would take the extra key for the item list: the referee must refuse it."""
    page = {**_example("message_list_example.json"), "meta": {}}
    problems = twilio_spec.response_problems(_as_answer("GET", page["uri"], 200, page))
    assert any("'meta' was unexpected" in problem for problem in problems), problems


GOOD_ERROR = {
    "code": 21211,
    "message": "The 'To' number 11234 is not a valid phone number.",
    "more_info": "https://www.twilio.com/docs/errors/21211",
    "status": 400,
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda e: e.pop("status"), "'status' is a required property"),
        (lambda e: e.update(code="21211"), "'21211' is not of type 'integer'"),
        (lambda e: e.update(status=401), "401 but HTTP 400"),
        (lambda e: e.update(more_info="https://www.twilio.com/docs/errors/21212"), "does not name"),
        (lambda e: e.update(error=1), "'error' was unexpected"),
    ],
)
def test_an_error_body_off_twilios_shape_is_caught(
    twilio_spec: TwilioSpec, change: Callable[[dict[str, Any]], object], expected: str
) -> None:
    body = dict(GOOD_ERROR)
    change(body)
    problems = twilio_spec.error_problems(body, 400)
    assert any(expected in problem for problem in problems), problems


def test_fault_answers_have_twilios_error_shape_too(
    twilio_spec: TwilioSpec, start_recording: Callable[..., RecordingSimulator]
) -> None:
    """429s from the concurrency limit and injected 5xx are judged like every other error."""
    throttling = start_recording(
        dataclasses.replace(FAST, concurrency_limit=1, latency_ms=200, retry_after_s=1)
    )
    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(lambda _: throttling.http("GET", ACCOUNT)[0], range(2)))
    failing = start_recording(dataclasses.replace(FAST, server_error_share=1.0))
    for _ in range(6):  # both kinds, 500 and 503, come up
        failing.http("GET", ACCOUNT)

    assert statuses == [200, 429]
    errors = [e for sim in (throttling, failing) for e in sim.api_exchanges() if e.status >= 400]
    assert {e.status for e in errors} == {429, 500, 503}  # the draws are seeded: fixed
    assert [p for e in errors for p in twilio_spec.response_problems(e)] == []
