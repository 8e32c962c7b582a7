"""The send pipeline: claim deliveries from the store, POST them, hand them to tracking.

Deliveries are claimed in batches (PENDING -> POSTING, committed) before any of them is
posted, so the store always knows which records may have reached Twilio. A worker per
allowed concurrent request takes claimed deliveries one at a time. Every outcome is one of:
Twilio accepted it (tracked), Twilio refused it for this recipient or record (`error` with
Twilio's code and message), the answer was lost (reconciled, never resent blindly), or the
connection itself is wrong (the run stops, unsent deliveries go back to PENDING).

How fast is not decided here: the client's adaptive window (engine/pacing.py) admits each
request, and a connection's segment cap spaces the POSTs. When Twilio stays too busy
(429, 21611) beyond the client's retries, a delivery waits and tries again rather than
failing: nothing was created, so nothing can go out twice.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from smslink.domain.callbacks import status_callback_url
from smslink.domain.errors import Action, Remedy, say
from smslink.domain.models import Connection, Outgoing, Progress, ResultStatus, Stage
from smslink.engine.counters import RunCounters
from smslink.engine.errors import LeaseLost, RunHalted, lease_lost
from smslink.engine.optouts import OPTED_OUT, OptOuts
from smslink.engine.pacing import SegmentPacer, SegmentRate
from smslink.engine.progress_writer import ProgressWriter
from smslink.engine.reconcile import Reconciler, is_verdict_on_record, outcome_unknown
from smslink.engine.timings import Timings
from smslink.engine.track import Acceptor
from smslink.store import Store
from smslink.twilio import (
    AnswerLost,
    ApiError,
    ErrorKind,
    Message,
    NotTwilio,
    TwilioClient,
    TwilioError,
    Withheld,
)


@dataclass
class SendingShare:
    """What the senders of one worker process share: `requests` sends in flight at once
    (the worker's concurrency less one, kept free for tracking), as `slots`."""

    requests: int
    slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.requests = max(1, self.requests)
        self.slots = asyncio.Semaphore(self.requests)


class Sender:
    """Posts every PENDING delivery of one run with at most `concurrency` requests at once."""

    def __init__(
        self,
        *,
        store: Store,
        client: TwilioClient,
        connection: Connection,
        run_id: int,
        writer: ProgressWriter,
        tracker: Acceptor,
        counters: RunCounters,
        reconciler: Reconciler,
        lease_held: Callable[[], bool] = lambda: True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        optouts: OptOuts | None = None,
        timings: Timings | None = None,
        segment_rate: SegmentPacer | None = None,
        part: int | None = None,
        sharing: SendingShare | None = None,
    ) -> None:
        self._timings = timings or Timings()
        self._part = part  # a worker sends one part of the run (domain/parts.py)
        self._store = store
        # The sender's opt-outs: skipped before their POST, and learned from 21610 answers.
        # None (a bare Sender in a benchmark) neither skips nor remembers anyone.
        self._optouts = optouts
        self._client = client
        self._connection = connection
        self._run_id = run_id
        self._writer = writer
        self._tracker = tracker
        self._counters = counters
        self._reconciler = reconciler
        self._lease_held = lease_held
        self._lease_lost = False
        base = connection.callback_base_url
        # Twilio posts each status change there (and retries a failed post, see
        # domain/callbacks.py); polling stays the fallback.
        self._status_callback = status_callback_url(base, connection.name) if base else None
        self._clock = clock
        self._work_added = asyncio.Event()  # the audience reader stored another batch
        self._audience_read = False  # every record is stored: no PENDING left means done
        # One request slot stays free for tracking: the HTTP pool is `concurrency` wide and
        # a worker that frees a connection takes it straight back, so a sender using every
        # slot would starve polling until sending ended (and keep every message in memory).
        self._concurrency = max(1, connection.concurrency - 1)
        self._claim_batch = max(200, self._concurrency * 2)
        # A worker's senders (one per part it holds) share its requests: together they
        # keep one free for tracking, and each claims only what it can post soon (what
        # a killed worker had claimed is looked up at Twilio before anything is resent).
        self._sharing = sharing
        if sharing is not None:
            self._concurrency = min(self._concurrency, sharing.requests)
            self._claim_batch = self._concurrency * 2
        self._claimed: deque[Outgoing] = deque()
        self._claim_lock = asyncio.Lock()
        self._exhausted = False
        self._halt: RunHalted | None = None
        # The sender's cap, shared with other runs from the same sender when given.
        cap = connection.max_segments_per_second
        self._segment_rate = segment_rate or (SegmentRate(cap) if cap else None)

    async def run(self) -> None:
        """Send until nothing is PENDING; raises RunHalted on a configuration error."""
        try:
            # A TaskGroup, not gather: if one worker fails, the others are cancelled
            # before the claimed deliveries are released and the client closed.
            async with asyncio.TaskGroup() as workers:
                for _ in range(self._concurrency):
                    workers.create_task(self._worker())
        finally:
            # Claimed but never posted (halt, Ctrl-C): safe to send later.
            self._release(list(self._claimed))
            self._claimed.clear()
        if self._halt is not None:
            raise self._halt

    async def _worker(self) -> None:
        while self._halt is None:
            outgoing = await self._next()
            if outgoing is None:
                return
            if self._sharing is None:
                await self._send(outgoing)
            else:
                async with self._sharing.slots:
                    await self._send(outgoing)

    async def _next(self) -> Outgoing | None:
        """The next claimed delivery; claims a batch when none is left, waiting for the
        audience reader while it is still storing records. None when all are sent."""
        while not self._claimed:
            if self._exhausted or self._halt is not None:
                return None
            async with self._claim_lock:
                if self._claimed or self._exhausted or self._halt is not None:
                    continue  # re-check: the state changed while this worker queued
                if not self._still_ours():
                    continue  # claim nothing the run's new owner should send
                self._work_added.clear()
                batch = self._store.deliveries.claim_pending(
                    self._run_id,
                    self._claim_batch,
                    self._clock(),
                    part=self._part,
                )
                if batch:
                    self._claimed.extend(batch)
                elif self._audience_read:
                    self._exhausted = True
                else:
                    await self._work_added.wait()
        return self._claimed.popleft()

    async def _send(self, outgoing: Outgoing) -> None:
        if self._optouts is not None and (skip := self._optouts.skip_reason(outgoing.to)):
            self._finish_with_error(outgoing, OPTED_OUT, skip)  # Twilio would refuse it: 21610
            return
        key = (outgoing.to, outgoing.body)
        lost: TwilioError | None = None
        sends = 0  # POSTs that may have reached Twilio: each one is reconciled
        busy_since: float | None = None  # when Twilio first said "too busy" to this one
        while sends < self._timings.max_sends_per_delivery:
            if self._segment_rate is not None:
                await self._segment_rate.take(outgoing.segments)
            if not self._may_post(outgoing):
                return
            try:
                with self._reconciler.posting(key):
                    message = await self._client.create_message(
                        to=outgoing.to,
                        body=outgoing.body,
                        from_number=self._connection.from_number,
                        messaging_service_sid=self._connection.messaging_service_sid,
                        status_callback=self._status_callback,
                        may_send=self._may_send,
                    )
            except Withheld:  # halted or lease lost during retries: this attempt never left
                self._release([outgoing])
                return
            except NotTwilio as error:
                if error.kind is not ErrorKind.AMBIGUOUS:
                    # A page from something that is not Twilio: the connection is wrong. The
                    # delivery stays POSTING (it may have been forwarded), so a resume checks
                    # it with Twilio before sending anything again.
                    self.halt(f"{error}; nothing more was sent")
                    return
                lost = error  # a proxy's 5xx to a POST: it may have reached Twilio all the same
            except ApiError as error:
                if error.kind is ErrorKind.RETRYABLE:  # 429/21611 outlasted the client's retries
                    busy_since = busy_since or time.monotonic()
                    if await self._wait_while_busy(outgoing, error, busy_since):
                        continue  # never processed: trying again cannot duplicate it
                    return
                if error.kind is not ErrorKind.AMBIGUOUS:  # Twilio decided: it was not sent
                    self._refused(outgoing, error)
                    return
                lost = error  # a 5xx to a POST: it may have been created all the same
            except AnswerLost as error:
                lost = error
            except TwilioError as error:  # connect failures after every retry
                self._stop(outgoing, f"cannot reach Twilio ({error}); nothing more was sent")
                return
            else:
                self._accepted(outgoing, message)
                return
            sends += 1
            if self._halt is not None:
                return  # stays POSTING: the resume checks it with Twilio
            try:
                found = await self._reconcile(outgoing)
            except TwilioError as error:
                if is_verdict_on_record(error):
                    self._unknown(outgoing, f"{lost}; checking with Twilio failed too: {error}")
                else:
                    # Twilio cannot be asked now (down, a proxy failing, credentials refused):
                    # no verdict about this record, so it stays POSTING and the run stops.
                    self.halt(
                        f"the answer to a message was lost ({lost}) and Twilio could not be "
                        f"asked whether it went out ({error}); nothing more was sent, and that "
                        "message is checked with Twilio when the run resumes"
                    )
                return
            if found is not None:
                self._accepted(outgoing, found)
                return
            # Proven not created: sending again cannot duplicate it.
        # Twilio failed every attempt and proved each time that nothing went out: it is
        # struggling, so stop the run (resumable) rather than fail record after record.
        attempts = self._timings.max_sends_per_delivery
        self._stop(
            outgoing, f"Twilio failed {attempts} attempts in a row ({lost}); nothing more was sent"
        )

    async def _wait_while_busy(self, outgoing: Outgoing, error: ApiError, since: float) -> bool:
        """Twilio keeps answering 429 or 21611 (sender queue full): wait and try again, for
        up to `Timings.busy_give_up_s`; then stop the run, which a later resume continues.
        Never the record's result: nothing is wrong with it, and it was never created."""
        give_up_s, pause_s = self._timings.busy_give_up_s, self._timings.busy_pause_s
        if time.monotonic() - since >= give_up_s:
            setting = "max_segments_per_second" if error.code == 21611 else "concurrency"
            advice = "segment cap" if error.code == 21611 else "concurrency"
            self._stop(
                outgoing,
                f"Twilio kept refusing for {give_up_s / 60:.0f} minutes ({error}); nothing "
                f"more was sent: resume later, or lower the connection's {advice}",
                remedy=self._fix_connection(setting),
            )
            return False
        await asyncio.sleep(random.uniform(pause_s / 2, pause_s))
        return True

    def _may_send(self) -> bool:
        """Asked before every attempt, retries included."""
        return self._halt is None and self._still_ours()

    def _may_post(self, outgoing: Outgoing) -> bool:
        """Checked before every POST: not halted, and the run is still surely ours."""
        if self._may_send():
            return True
        self._release([outgoing])  # a no-op once the lease is lost
        return False

    def _still_ours(self) -> bool:
        """False (and the sender halted) once the lease may have passed to another process."""
        if self._lease_held():
            return True
        self.lose_lease()
        return False

    def lose_lease(self) -> None:
        """Stop at once as a process whose run may have passed to another (a fenced write
        was refused, tracking found the lease lost), not at a worker's next request: no
        more POSTs, no releases, and `run` raises LeaseLost, whatever else halted it (the
        run is not this process's to report on). A worker waiting for records is woken."""
        self._lease_lost = True  # from now on this process writes no releases
        if not isinstance(self._halt, LeaseLost):
            self._halt = lease_lost(self._run_id)
        self._work_added.set()

    async def _reconcile(self, outgoing: Outgoing) -> Message | None:
        """The message the lost POST created, or None when Twilio proves it was not;
        raises TwilioError when Twilio cannot be asked."""
        await asyncio.sleep(self._timings.reconcile_grace_s)  # let a request in flight land
        return await self._reconciler.find(
            to=outgoing.to, body=outgoing.body, attempted_at=outgoing.claimed_at
        )

    def _accepted(self, outgoing: Outgoing, message: Message) -> None:
        self._reconciler.known_sids.add(message.sid)
        self._counters.posted += 1
        self._tracker.accept(outgoing.seq, message)

    def _refused(self, outgoing: Outgoing, error: ApiError) -> None:
        if error.kind is ErrorKind.CONFIGURATION:
            self._stop(
                outgoing,
                say(
                    "Twilio refused the connection's settings (%(error)s); nothing more was "
                    "sent: fix the connection",
                    error=error,
                ),
                remedy=self._fix_connection(),
            )
            return
        message = error.message
        if error.code == OPTED_OUT and self._optouts is not None:
            message = self._optouts.record(outgoing.to, error.message)  # later ones are skipped
        self._finish_with_error(outgoing, error.code, message)

    def _unknown(self, outgoing: Outgoing, reason: str) -> None:
        self._finish_with_error(outgoing, None, outcome_unknown(reason))

    def _finish_with_error(self, outgoing: Outgoing, code: int | None, message: str) -> None:
        self._writer.put(
            Progress(
                run_id=self._run_id,
                seq=outgoing.seq,
                stage=Stage.DONE,
                status=ResultStatus.ERROR,
                error_code=code,
                error_message=message,
                updated_at=self._clock(),
            )
        )
        self._counters.finished(ResultStatus.ERROR)

    def work_added(self) -> None:
        """The audience reader stored more deliveries."""
        self._work_added.set()

    def audience_read(self) -> None:
        """Every record is stored: once none is PENDING, sending is over."""
        self._audience_read = True
        self._work_added.set()

    def halt(self, reason: str, *, remedy: Remedy | None = None) -> None:
        """Stop sending: workers finish the request in hand and take no more."""
        if self._halt is None:
            self._halt = RunHalted(reason, remedy=remedy)
            self._work_added.set()  # wake a worker waiting for the audience reader

    def _stop(self, outgoing: Outgoing, reason: str, *, remedy: Remedy | None = None) -> None:
        """Halt the run; this delivery was not sent, so it goes back to PENDING."""
        self._release([outgoing])
        self.halt(reason, remedy=remedy)

    def _fix_connection(self, setting: str | None = None) -> Remedy:
        args: dict[str, str | int | float | None] = {"connection": self._connection.name}
        if setting is not None:
            args["setting"] = setting
        return Remedy(Action.UPDATE_CONNECTION, args)

    def _release(self, deliveries: list[Outgoing]) -> None:
        if self._lease_lost or not self._lease_held():
            self._lease_lost = True
            return  # the run's new owner decides about these now
        for outgoing in deliveries:
            self._writer.put(
                Progress(
                    run_id=self._run_id,
                    seq=outgoing.seq,
                    stage=Stage.PENDING,
                    claimed_at=outgoing.claimed_at,
                )
            )
