"""Webhook subscriptions: what one is, how a delivery to it is signed, and how long to wait
before the next try.

Signing follows Standard Webhooks (https://www.standardwebhooks.com): a request carries
`webhook-id` (the event's id), `webhook-timestamp` (unix seconds) and `webhook-signature`
= `v1,` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), where the secret is
`whsec_` + base64 of random bytes and the key is those bytes. The `standardwebhooks`
package computes it, so a subscriber verifies with that package (or any other
implementation of the standard) and our own signing cannot drift from it.

A subscription that fails is retried with exponential backoff and full jitter: the n-th
retry waits a random time between 0 and min(cap, base * 2**(n-1)), so many subscriptions
that failed together do not retry together.

A pure domain module: no I/O but the random bytes of a new secret.
"""

from __future__ import annotations

import base64
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

#: What a webhook secret starts with (the standard's convention).
SECRET_PREFIX = "whsec_"
#: Random bytes in a new secret (the standard asks for 24 to 64).
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    """Where delivery events go (every touchpoint's, or one's), and how delivery is going.

    `last_event_id` is the cursor: every event up to it was delivered (or is not this
    subscription's), the next one goes after it. A disabled subscription has `disabled_at`
    and a reason; a failing one counts its `attempts` since `failing_since`."""

    id: int
    url: str
    touchpoint: str | None
    created_at: datetime
    created_by: str | None
    last_event_id: int
    attempts: int
    next_attempt_at: datetime | None
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    last_error: str | None

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


def new_secret() -> str:
    """A new signing secret: `whsec_` and the base64 of SECRET_BYTES random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header of `body` sent as `message_id` at `timestamp`."""
    return Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)


def signed_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three headers of the standard for one request."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def backoff_s(
    attempts: int, *, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """How long to wait after the `attempts`-th failure in a row (1 for the first):
    uniformly random in [0, min(cap_s, base_s * 2**(attempts - 1))] (full jitter)."""
    exponent = min(max(attempts, 1) - 1, 62)  # 2**62 * base is past any cap already
    ceiling = min(cap_s, base_s * 2.0**exponent)
    return (rng or random).uniform(0.0, max(0.0, ceiling))
