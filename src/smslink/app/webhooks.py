"""Webhook subscriptions: delivery events posted to a subscriber's URL, signed, in order.

An administrator adds a subscription (a URL, every touchpoint's events or one's) and is
shown its signing secret once. The web service's dispatcher (`smslink.web.webhooks`)
posts each subscription's events after its cursor one at a time, signed per Standard
Webhooks (`smslink.domain.webhooks`); a 2xx moves the cursor on (`delivered`), anything
else schedules a retry with exponential backoff and full jitter (`failed`), and after
`WebhookTimings.give_up_after_s` of failing without a success the subscription is disabled
with its reason, until an administrator enables it again.

Everything a subscription knows is in the store, so a restart resumes after its cursor.
"""

from __future__ import annotations

import builtins
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from smslink.domain.base_url import check_webhook_url
from smslink.domain.errors import InvalidInput, Problem, say
from smslink.domain.events import DeliveryEvent
from smslink.domain.webhooks import WebhookSubscription, backoff_s, new_secret
from smslink.store import NotFound, Store


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookTimings:
    """How the dispatcher waits and retries (tests pass short ones)."""

    #: How often the dispatcher asks the store for subscriptions with work (one read): an
    #: event waits at most this long before its POST starts.
    poll_s: float = 0.1
    #: How long one POST may take before it counts as failed.
    request_timeout_s: float = 10.0
    #: The first retry waits up to this; each further one twice as long...
    backoff_base_s: float = 1.0
    #: ... up to this.
    backoff_max_s: float = 3600.0
    #: Failing without a success this long disables the subscription.
    give_up_after_s: float = 24 * 3600.0
    #: Events read from the store at a time per subscription.
    batch: int = 100
    #: POSTs under way at once per subscription (each for another delivery: a delivery's
    #: events are posted one after the other, in order).
    concurrency: int = 16


class Webhooks:
    """The front door to webhook subscriptions, and the dispatcher's bookkeeping."""

    def __init__(self, store: Store, timings: WebhookTimings | None = None) -> None:
        self._store = store
        self.timings = timings or WebhookTimings()
        self._rng = random.Random()

    def add(
        self, url: str, touchpoint: str | None = None, created_by: str | None = None
    ) -> tuple[WebhookSubscription, str]:
        """A new subscription to the events of `touchpoint` (None: every touchpoint) from
        now on, and its signing secret, shown this once. InvalidInput by field ("url",
        "touchpoint") for a URL smslink will not post to or a touchpoint that is not there."""
        problems = []
        try:
            url = check_webhook_url(url)
        except ValueError as e:
            problems.append(Problem("url", str(e)))
        touchpoint = (touchpoint or "").strip() or None
        if touchpoint is not None:
            try:
                self._store.catalogue.get_touchpoint(touchpoint)
            except NotFound:
                problems.append(
                    Problem(
                        "touchpoint", say("no touchpoint named %(name)s", name=repr(touchpoint))
                    )
                )
        if problems:
            raise InvalidInput(problems=problems)
        secret = new_secret()
        added = self._store.webhooks.add(
            url=url, touchpoint=touchpoint, secret=secret, created_by=created_by, now=_now()
        )
        return added, secret

    def list(self) -> list[WebhookSubscription]:
        return self._store.webhooks.list()

    def get(self, subscription_id: int) -> WebhookSubscription:
        """NotFound when there is no such subscription."""
        return self._store.webhooks.get(subscription_id)

    def remove(self, subscription_id: int) -> None:
        """NotFound when there is no such subscription."""
        self._store.webhooks.remove(subscription_id)

    def enable(self, subscription_id: int) -> WebhookSubscription:
        """Enabled again (a disabled one, or one waiting for its next try): it is tried at
        once, from its cursor, with its failure count reset."""
        return self._store.webhooks.enable(subscription_id)

    # -- the dispatcher's store calls (blocking: call them off the event loop) ---------

    def due(self) -> builtins.list[tuple[WebhookSubscription, str]]:
        """Enabled subscriptions with events to send and no retry to wait for, each with
        its secret."""
        return self._store.webhooks.due(_now())

    def next_events(
        self, subscription: WebhookSubscription
    ) -> tuple[builtins.list[DeliveryEvent], int]:
        """The next events for `subscription` after its cursor, in order, and how far they
        cover (see `WebhookStore.next_events`)."""
        return self._store.webhooks.next_events(
            subscription.last_event_id, subscription.touchpoint, self.timings.batch
        )

    def delivered(self, subscription_id: int, event_id: int) -> None:
        """The subscriber accepted `event_id` (or every event up to it is not its): the
        cursor moves there and the failures are forgotten."""
        self._store.webhooks.delivered(subscription_id, event_id)

    def failed(self, subscription: WebhookSubscription, error: str) -> None:
        """A delivery to `subscription` failed with `error`: the next try after a backoff,
        or, when it has been failing for `give_up_after_s`, disabled with the reason."""
        now = _now()
        attempts = subscription.attempts + 1
        failing_since = subscription.failing_since or now
        delay = backoff_s(
            attempts,
            base_s=self.timings.backoff_base_s,
            cap_s=self.timings.backoff_max_s,
            rng=self._rng,
        )
        disabled_at: datetime | None = None
        reason: str | None = None
        next_at: datetime | None = now + timedelta(seconds=delay)
        if (now - failing_since).total_seconds() >= self.timings.give_up_after_s:
            disabled_at, next_at = now, None
            reason = say(
                "disabled after %(attempts)s failed deliveries in a row since %(since)s; the "
                "last one: %(error)s",
                attempts=attempts,
                since=failing_since.isoformat(timespec="seconds"),
                error=error,
            )
        self._store.webhooks.failed(
            subscription.id,
            error=error,
            attempts=attempts,
            failing_since=failing_since,
            next_attempt_at=next_at,
            disabled_at=disabled_at,
            disabled_reason=reason,
        )


def _now() -> datetime:
    return datetime.now(UTC)
