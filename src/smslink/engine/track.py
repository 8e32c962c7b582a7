"""Event tracking: polling sent messages until they are final or the attempts run out.

The original connector polls each message every *poll interval*, up to *poll attempts*
times, stops at delivered, undelivered or failed, and reports `sent` when the attempts are
used up. That costs one GET per message per round; here a round reads the account's
message list instead (1,000 messages a page, newest first, stopping once every message due
is seen or the list goes back past the run's start) whenever that takes fewer requests than
fetching the due messages one by one. A 10,000-message run costs about ten requests a round
instead of 10,000.

With status callbacks (the connection has a callback base URL), Twilio tells the web
service about every status change and the service writes it to the store
(store/callbacks.py); polling is then the fallback. Before each round the tracker asks the
store which of its messages a callback already finished and drops them, and it polls a
message only once a whole interval has passed since its send (or its last poll) without
that: a callback is expected well within it. A message whose callbacks do not come (lost,
refused, the service down) is polled exactly as without callbacks: every interval, up to
the attempts, then `sent`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from smslink.domain.models import (
    TWILIO_FINAL,
    Connection,
    Progress,
    ResultStatus,
    Stage,
    advances,
    result_for_twilio_status,
)
from smslink.engine.counters import RunCounters
from smslink.engine.errors import lease_lost
from smslink.engine.progress_writer import ProgressWriter
from smslink.store import Store
from smslink.twilio import ApiError, Message, TwilioClient, TwilioError
from smslink.twilio.client import parse_twilio_date
from smslink.waiting import wait_until

LIST_PAGE_SIZE = 1000
#: Messages a round observes, or a listing page scans, before it lets the event loop
#: handle the senders' answers again (100 take at most about 1 ms).
OBSERVE_SLICE = 100
#: Margin for clock skew between this machine and Twilio when deciding that a listing has
#: gone back past the run's first message.
CLOCK_SKEW = timedelta(minutes=5)


class Acceptor(Protocol):
    """Takes on a message Twilio accepted: the Tracker (which then polls it), or a
    worker's hand-off to the run's tracking job (engine/parts.py)."""

    def accept(self, seq: int, message: Message) -> None: ...


@dataclass(slots=True)
class Tracked:
    """A message being polled: just what tracking needs, so 100,000 of them stay small."""

    seq: int
    sid: str
    status: str
    polls: int = 0
    last_polled: float = 0.0  # time.monotonic() of the last poll (or of the send)
    updated_at: datetime | None = None  # when Twilio last changed the status
    error_code: int | None = None
    error_message: str | None = None
    #: How many messages this run had created before it: how far down the listing (newest
    #: first) it is. Messages resumed after a stop count as the oldest (0).
    order: int = 0


class Tracker:
    """Polls every tracked message of one run, in rounds, until all are done."""

    def __init__(
        self,
        *,
        client: TwilioClient,
        connection: Connection,
        run_id: int,
        writer: ProgressWriter,
        counters: RunCounters,
        since: datetime,
        lease_held: Callable[[], bool] = lambda: True,
        store: Store | None = None,
    ) -> None:
        self._client = client
        self._connection = connection
        self._run_id = run_id
        self._writer = writer
        self._counters = counters
        self._lease_held = lease_held
        self._since = since - CLOCK_SKEW
        self._interval_s = connection.poll_interval_ms / 1000
        self._attempts = max(1, connection.poll_attempts)
        self._tracked: dict[str, Tracked] = {}
        self._listed_total = 0  # messages this run created: what a full listing must cover
        # With callbacks on: which tracked deliveries a callback finished, from the store.
        self._finished_among: Callable[[int, Collection[int]], dict[int, ResultStatus]] | None = (
            store.deliveries.finished_among
            if store is not None and connection.callback_base_url
            else None
        )

    def __len__(self) -> int:
        return len(self._tracked)

    def accept(self, seq: int, message: Message) -> None:
        """Take on a message Twilio just accepted (or that reconciliation found): store its
        state, then track it, or finish it at once when it is already final."""
        tracked = Tracked(
            seq,
            message.sid,
            message.status,
            last_polled=time.monotonic(),
            updated_at=message.date_updated or datetime.now(UTC),
            error_code=message.error_code,
            error_message=message.error_message,
            order=self._listed_total,
        )
        self._listed_total += 1
        if message.status in TWILIO_FINAL:
            self._finish(tracked)
            return
        self._tracked[message.sid] = tracked
        # Written with its next state when the writer holds states (often final by the
        # next round: one write, not two), else at once (engine/pipeline.py decides).
        self._writer.put_later(self._progress(tracked, Stage.TRACKING, None))

    def resume(
        self, seq: int, sid: str, status: str, *, polls: int, updated_at: datetime | None
    ) -> None:
        """Track again a message a stopped run was tracking (its state is already stored)."""
        self._tracked[sid] = Tracked(seq, sid, status, polls, time.monotonic(), updated_at)
        self._listed_total += 1

    async def run(self, sending_done: asyncio.Event) -> None:
        """Poll in rounds until sending is over and nothing is left to track."""
        while True:
            if sending_done.is_set() and not self._tracked:
                return
            early = await self._sleep_until_next_round(sending_done)
            if not self._lease_held():
                raise lease_lost(self._run_id)
            self._drop_finished_by_callbacks()
            due = self._due(early=early)
            if due:
                await self._poll(due)

    async def _sleep_until_next_round(self, sending_done: asyncio.Event) -> bool:
        """Wait one interval; return early only when sending ends with nothing to track.

        Once sending is over, the round comes no later than every message never polled
        is due (never less than a tenth of an interval on): the run's last messages are
        read as soon as they may be, not up to an interval later, in one round, and
        messages polled before keep the interval.
        With callbacks, likewise for the first message whose callback is overdue: the
        run's last lost callbacks cost one interval, not up to two. While sending, rounds
        keep the interval: a listing round costs about a page however many messages it
        finds, so fewer, fuller rounds are cheaper.

        True when the round comes before its whole interval (see `_due`).
        """
        deadline = time.monotonic() + self._interval_s
        early = False
        if not sending_done.is_set():
            await wait_until(sending_done, deadline - time.monotonic())
            if not self._tracked:
                return False
        if sending_done.is_set() and self._tracked:
            sooner = max(self._first_due(), time.monotonic() + self._interval_s / 10)
            early = sooner < deadline
            deadline = min(deadline, sooner)
        remaining = deadline - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
        return early

    def _first_due(self) -> float:
        """When a round should come without waiting its whole interval: with callbacks,
        when the first callback is overdue; without, when every message never polled is
        due (half an interval after the last one's send, as `_due` says), so one round
        reads them all: rounds split by send time would each cost a listing, for every
        attempt that follows."""
        if self._finished_among is not None:
            return min(t.last_polled for t in self._tracked.values()) + self._interval_s
        unpolled = [t.last_polled for t in self._tracked.values() if t.polls == 0]
        if not unpolled:
            return float("inf")
        return max(unpolled) + self._interval_s / 2

    def _drop_finished_by_callbacks(self) -> None:
        """Stop tracking what a status callback finished (the store holds its result)."""
        if self._finished_among is None or not self._tracked:
            return
        by_seq = {t.seq: t for t in self._tracked.values()}
        for seq, result in self._finished_among(self._run_id, by_seq).items():
            self._tracked.pop(by_seq[seq].sid, None)
            self._counters.finished(result)

    def _due(self, *, early: bool = False) -> list[Tracked]:
        """Messages whose last poll (or send) is at least half an interval old.

        Half, not a whole: rounds come every interval, so a message sent just after a round
        is polled at the next round rather than skipping one. With callbacks a whole one:
        its callback is expected before then, and a poll would only repeat it. In an
        `early` round (sending is over and the last messages fell due before the interval
        was up) a message polled before waits its whole interval: the early round is for
        those never polled, and must not spend a straggler's attempts sooner.
        """
        now = time.monotonic()
        half, whole = now - self._interval_s / 2, now - self._interval_s
        callbacks = self._finished_among is not None
        return [
            t
            for t in self._tracked.values()
            if t.last_polled <= (whole if callbacks or (early and t.polls) else half)
        ]

    async def _poll(self, due: list[Tracked]) -> None:
        pages_for_listing = max(1, math.ceil(self._listed_total / LIST_PAGE_SIZE))
        # A listing stops once it has seen every due message: it reads down to the oldest
        # one due, so recent stragglers (lost callbacks, say) cost a page, not a full list.
        oldest_due = min(t.order for t in due)
        pages_to_read = max(1, math.ceil((self._listed_total - oldest_due) / LIST_PAGE_SIZE))
        if len(due) > pages_to_read:
            sender = self._connection.from_filter
            listed = await self._read_listing({t.sid for t in due}, sender)
            seen = listed or {}
            # Normally none are missing. Messages from an earlier sender (the connection
            # was changed before a resume) are not in this sender's listing: look for them
            # one by one when few, else in the whole account's listing.
            missing = [t for t in due if t.sid not in seen]
            if missing and len(missing) <= pages_for_listing:
                seen.update(await self._fetch_each(missing))
            elif missing:
                if sender is not None:
                    listed = await self._read_listing({t.sid for t in missing}, None)
                    seen.update(listed or {})
                if listed is not None:
                    # Listed in full and still not there: deleted from Twilio's log. One
                    # fetch each says so (20404) and ends them with their last status,
                    # instead of listing for them round after round.
                    seen.update(await self._fetch_each([t for t in missing if t.sid not in seen]))
        else:
            seen = await self._fetch_each(due)
        now = time.monotonic()
        for i, tracked in enumerate(due, 1):
            tracked.last_polled = now
            self._observe(tracked, seen.get(tracked.sid))
            if i % OBSERVE_SLICE == 0:
                await asyncio.sleep(0)  # a big round must not hold the senders' answers

    async def _read_listing(
        self, wanted: set[str], from_number: str | None
    ) -> dict[str, Message] | None:
        """Page through a sender's (or the account's) messages, newest first, until all
        wanted are seen; None when the listing failed (the round just counts as a poll).

        Only wanted messages are decoded: a round pages past many that are already final.
        """
        found: dict[str, Message] = {}
        try:
            async for page in self._client.list_message_pages(
                from_number=from_number, page_size=LIST_PAGE_SIZE
            ):
                for i, item in enumerate(page, 1):
                    if item.get("sid") in wanted:
                        message = Message.from_json(item)
                        found[message.sid] = message
                    if i % OBSERVE_SLICE == 0:
                        await asyncio.sleep(0)  # a full page must not hold the answers
                if len(found) == len(wanted) or _older_than(page, self._since):
                    break
        except TwilioError:
            return None
        return found

    async def _fetch_each(self, due: Iterable[Tracked]) -> dict[str, Message]:
        found: dict[str, Message] = {}

        async def fetch(sid: str) -> None:
            try:
                found[sid] = await self._client.fetch_message(sid)
            except ApiError as error:
                if error.code == 20404:
                    self._vanished(sid, error)
            except TwilioError:
                pass

        await asyncio.gather(*(fetch(t.sid) for t in due))
        return found

    def _observe(self, tracked: Tracked, message: Message | None) -> None:
        """Apply one poll's result: forward moves only, final statuses end tracking."""
        if tracked.sid not in self._tracked:
            return  # ended while this round was in flight (e.g. vanished)
        tracked.polls += 1
        changed = message is not None and advances(tracked.status, message.status)
        if changed and message is not None:
            tracked.status = message.status
            tracked.error_code = message.error_code
            tracked.error_message = message.error_message
            tracked.updated_at = message.date_updated or datetime.now(UTC)
        if tracked.status in TWILIO_FINAL or tracked.polls >= self._attempts:
            self._finish(tracked)
        elif changed:
            self._writer.put(self._progress(tracked, Stage.TRACKING, None))

    def _finish(self, tracked: Tracked) -> None:
        """Final status, or attempts used up (then `sent`, as the original connector did)."""
        self._tracked.pop(tracked.sid, None)
        result = result_for_twilio_status(tracked.status)
        self._writer.put(self._progress(tracked, Stage.DONE, result))
        self._counters.finished(result)

    def _vanished(self, sid: str, error: ApiError) -> None:
        """Twilio no longer has the message (deleted from the log): it was sent, so the
        result is its last known status (usually `sent`), with Twilio's answer beside it."""
        tracked = self._tracked.get(sid)
        if tracked is None:
            return
        tracked.error_code = error.code
        tracked.error_message = f"the message can no longer be read from Twilio: {error.message}"
        self._finish(tracked)

    def _progress(self, tracked: Tracked, stage: Stage, result: ResultStatus | None) -> Progress:
        """The whole mutable state of the delivery: the store overwrites every field."""
        return Progress(
            run_id=self._run_id,
            seq=tracked.seq,
            stage=stage,
            status=result,
            twilio_status=tracked.status,
            message_sid=tracked.sid,
            error_code=tracked.error_code,
            error_message=tracked.error_message,
            polls=tracked.polls,
            updated_at=tracked.updated_at,
        )


def _older_than(page: list[dict], since: datetime) -> bool:
    """True when the page reaches messages created before `since` (the listing is newest first)."""
    if not page:
        return True
    oldest = parse_twilio_date(page[-1].get("date_created"))
    return oldest is not None and oldest < since
