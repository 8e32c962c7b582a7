"""Webhook signing against the Standard Webhooks specification's published example, new
secrets, and the backoff with full jitter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

from standardwebhooks.webhooks import Webhook

from smslink.domain.base_url import check_webhook_url
from smslink.domain.webhooks import SECRET_PREFIX, backoff_s, new_secret, signed_headers

# The specification's example (standard-webhooks, spec/standard-webhooks.md and the
# reference libraries' tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_of_the_specifications_example_is_its_published_one() -> None:
    headers = signed_headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)

    assert headers == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }


def test_the_signature_is_the_hmac_the_specification_describes() -> None:
    secret = new_secret()
    body = '{"event_id":7,"status":"delivered"}'
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"7.1700000000.{body}".encode(), hashlib.sha256).digest()

    headers = signed_headers(secret, "7", 1700000000, body)

    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()


def test_a_new_secret_is_random_and_verifies_with_the_reference_library() -> None:
    import time

    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    secret = secrets.pop()
    assert secret.startswith(SECRET_PREFIX)
    assert len(base64.b64decode(secret.removeprefix(SECRET_PREFIX))) == 32
    body = '{"a":1}'
    headers = signed_headers(secret, "42", int(time.time()), body)
    assert Webhook(secret).verify(body, headers) == {"a": 1}


def test_backoff_doubles_from_the_base_up_to_the_cap_with_full_jitter() -> None:
    rng = random.Random(1)
    for attempts, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (10, 512.0), (13, 3600.0)]:
        waits = [backoff_s(attempts, base_s=1.0, cap_s=3600.0, rng=rng) for _ in range(300)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8 and min(waits) < ceiling * 0.2  # spread over [0, c]
    assert backoff_s(10_000, base_s=1.0, cap_s=3600.0, rng=rng) <= 3600.0
    assert backoff_s(0, base_s=0.5, cap_s=10.0, rng=rng) <= 0.5


def test_webhook_urls_are_https_or_http_to_this_machine_only() -> None:
    assert check_webhook_url(" https://hooks.example.com/sms/ ") == "https://hooks.example.com/sms"
    assert check_webhook_url("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/hook"
    for bad in ["http://hooks.example.com/x", "ftp://x", "https://u:p@x.com", ""]:
        try:
            check_webhook_url(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
