"""The webhook dispatcher: a task of the web service that posts delivery events to the
subscribers (`smslink.app.webhooks`), each delivery's in order.

Every `poll_s` it asks the store (off the event loop) which enabled subscriptions have
events after their cursor and no retry to wait for: one cheap statement while nothing
happens. Each such subscription gets a task of its own (a slow subscriber holds up no
other) that reads its next `batch` events and posts them, the body being the event exactly
as the stream's `data:` (`event_json`), signed per Standard Webhooks: each delivery's
events one after the other, different deliveries' side by side (`concurrency` at once;
one at a time, a subscriber 1 ms away took at most ~500 events a second, fewer than a
journey at 200 records a second makes). After the batch the cursor moves past every event
that got a 2xx and all before it; any other answer, a timeout or a network error ends the
batch (no new POSTs start), moves the cursor as far as that and schedules the retry
(`Webhooks.failed`). Started and stopped with the service (`web/app.py`); what it had not
posted yet is in the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import aiohttp

from smslink.app import Webhooks
from smslink.domain.events import DeliveryEvent
from smslink.domain.webhooks import WebhookSubscription, signed_headers
from smslink.web.api.deliveries import event_json

log = logging.getLogger("smslink.web.webhooks")

USER_AGENT = "smslink-webhooks"


class WebhookDispatcher:
    """Posts each subscription's events after its cursor, as long as the service runs."""

    def __init__(self, webhooks: Webhooks) -> None:
        self._webhooks = webhooks
        self._timings = webhooks.timings
        self._task: asyncio.Task[None] | None = None
        self._busy: dict[int, asyncio.Task[None]] = {}
        #: Each subscription's cursor as this dispatcher last moved it: a `due` read that
        #: started before a POST loop moved the cursor holds the old one, and must not
        #: make the next loop post those events again.
        self._cursors: dict[int, int] = {}

    def start(self) -> None:
        """Start dispatching on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="smslink-webhooks")

    async def shutdown(self) -> None:
        """Stop: a POST under way is abandoned (its event is posted again after a restart,
        since the cursor moves only after a 2xx)."""
        tasks = [t for t in (self._task, *self._busy.values()) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._timings.request_timeout_s)
        async with aiohttp.ClientSession(
            timeout=timeout, headers={"User-Agent": USER_AGENT}
        ) as session:
            while True:
                try:
                    due = await asyncio.to_thread(self._webhooks.due)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the database is away: try again at the next poll
                    log.exception("webhook dispatcher cannot read the subscriptions")
                    due = []
                self._busy = {k: t for k, t in self._busy.items() if not t.done()}
                for subscription, secret in due:
                    if subscription.id not in self._busy:
                        self._busy[subscription.id] = asyncio.create_task(
                            self._serve(session, subscription, secret),
                            name=f"smslink-webhook-{subscription.id}",
                        )
                await asyncio.sleep(self._timings.poll_s)

    async def _serve(
        self, session: aiohttp.ClientSession, subscription: WebhookSubscription, secret: str
    ) -> None:
        """Post `subscription`'s next events in order until there are none or one fails."""
        current = subscription
        moved = self._cursors.get(subscription.id, 0)
        if moved > current.last_event_id:
            current = _moved(current, moved)
        try:
            while True:
                found, covered = await asyncio.to_thread(self._webhooks.next_events, current)
                posted, error = await self._post_batch(session, current.url, secret, found)
                if error is not None:
                    if posted > current.last_event_id:
                        await asyncio.to_thread(self._webhooks.delivered, current.id, posted)
                        current = _moved(current, posted)
                        self._cursors[current.id] = posted
                    await asyncio.to_thread(self._webhooks.failed, current, error)
                    return
                # The cursor moves once per batch, not per event: one write instead of up to
                # `batch`. A restart in between posts the batch's delivered events again,
                # which subscribers drop by `webhook-id` (at least once, as documented).
                covered = max(covered, posted)
                if covered > current.last_event_id:
                    await asyncio.to_thread(self._webhooks.delivered, current.id, covered)
                    current = _moved(current, covered)
                    self._cursors[current.id] = covered
                if len(found) < self._timings.batch:
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # the database failed: the next poll tries again
            log.exception("webhook subscription %s", subscription.id)

    async def _post_batch(
        self,
        session: aiohttp.ClientSession,
        url: str,
        secret: str,
        events: list[DeliveryEvent],
    ) -> tuple[int, str | None]:
        """POST `events`: each delivery's in order, different deliveries' side by side (up
        to `concurrency` POSTs at once). What the cursor may move to (every event up to it
        was taken) and the first failure (None: all taken). A delivery's events after its
        failed one are not posted; other deliveries' events after the cursor may have been,
        and are posted again with the retry (at least once; the order of each delivery's
        events holds, which is the order the product promises)."""
        if not events:
            return 0, None
        by_delivery: dict[tuple[int, int], list[DeliveryEvent]] = {}
        for event in events:
            by_delivery.setdefault((event.run_id, event.seq), []).append(event)
        taken: set[int] = set()
        errors: list[str] = []
        gate = asyncio.Semaphore(self._timings.concurrency)

        async def post_in_order(queue: list[DeliveryEvent]) -> None:
            for event in queue:
                async with gate:
                    if errors:  # one failure ends the batch: no new POSTs
                        return
                    error = await self._post(session, url, secret, event)
                if error is not None:
                    errors.append(error)
                    return
                taken.add(event.id)

        # A task group, not gather: should one raise, the others' POSTs end with it, and
        # none is left posting beside the next loop for this subscription.
        async with asyncio.TaskGroup() as group:
            for queue in by_delivery.values():
                group.create_task(post_in_order(queue))
        cursor = 0
        for event in events:  # in id order: the cursor stops before the first not taken
            if event.id not in taken:
                break
            cursor = event.id
        return cursor, errors[0] if errors else None

    async def _post(
        self,
        session: aiohttp.ClientSession,
        url: str,
        secret: str,
        event: DeliveryEvent,
    ) -> str | None:
        """POST one event; None when the subscriber took it (2xx), else what went wrong."""
        body = event_json(event)
        headers = {
            "Content-Type": "application/json",
            **signed_headers(secret, str(event.id), int(time.time()), body),
        }
        try:
            async with session.post(
                url, data=body.encode(), headers=headers, allow_redirects=False
            ) as answer:
                await answer.read()
                if 200 <= answer.status < 300:
                    return None
                return f"HTTP {answer.status}"
        except TimeoutError:
            return f"no answer within {self._timings.request_timeout_s:g} s"
        except aiohttp.ClientError as e:
            return f"{type(e).__name__}: {e}"[:500]


def _moved(subscription: WebhookSubscription, cursor: int) -> WebhookSubscription:
    """The subscription as the store has it after `delivered(cursor)`."""
    return replace(
        subscription,
        last_event_id=cursor,
        attempts=0,
        next_attempt_at=None,
        failing_since=None,
        last_error=None,
    )
