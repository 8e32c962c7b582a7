"""Finding out whether a POST whose answer was lost created a message.

The send API has no idempotency key, so after a read timeout, a reset connection, a 5xx or
a crash mid-request the only safe way forward is to ask Twilio: list the messages to that
number since the attempt began and look for ours (our body, a sid this run has not
claimed). Found: track it. Proven absent: send it. Twilio cannot be asked: the delivery
stays POSTING and the run stops, to be checked when it resumes; only Twilio's own answer
about that recipient's look-up ends it as "outcome unknown". Never a second message.

The listing is by recipient only, not by sender: a connection's sender may have been
changed before a resume, and the messages sent earlier came from the old one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Container, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol

from smslink.domain.errors import say
from smslink.domain.models import Delivery, Progress, ResultStatus, Stage
from smslink.engine.counters import RunCounters
from smslink.engine.errors import RunHalted
from smslink.engine.progress_writer import ProgressWriter
from smslink.engine.timings import Timings
from smslink.engine.track import Acceptor
from smslink.store import Store
from smslink.twilio import ApiError, ErrorKind, Message, TwilioClient, TwilioError

#: Clock difference tolerated between this machine and Twilio.
CLOCK_SKEW = timedelta(minutes=5)
#: Messages per page when looking: a recipient rarely gets more than a few a day.
PAGE_SIZE = 50


class SidSet(Protocol):
    """The sids a run owns: an OwnedSids (engine/owned_sids.py), or a plain set."""

    def add(self, sid: str, /) -> None: ...

    def __contains__(self, sid: object, /) -> bool: ...


class Reconciler:
    """Looks up lost POSTs for one run, one look-up per (recipient, body) at a time.

    Serialising by recipient and body means two identical deliveries (the same person
    twice in an audience) can never both claim the one message that went out.
    """

    def __init__(self, client: TwilioClient, known_sids: SidSet) -> None:
        self._client = client
        self.known_sids = known_sids  # every sid the run owns, shared with the sender
        # One lock per (to, body) ever looked up: only lost answers get here, so few.
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._in_flight: Counter[tuple[str, str]] = Counter()  # POSTs awaiting an answer

    @contextmanager
    def posting(self, key: tuple[str, str]) -> Iterator[None]:
        """Mark a POST for (to, body) as in flight, so no look-up can take its message."""
        self._in_flight[key] += 1
        try:
            yield
        finally:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]

    async def find(self, *, to: str, body: str, attempted_at: datetime) -> Message | None:
        """The message this attempt created (now owned by the run), or None if Twilio has
        none. Raises TwilioError when Twilio cannot be asked.

        Waits while another POST of the same (to, body) is in flight: its answer will
        claim its own message, which a look-up must not take first.
        """
        while self._in_flight.get((to, body)):
            await asyncio.sleep(0.05)
        async with self._locks.setdefault((to, body), asyncio.Lock()):
            found = await find_sent(
                self._client, to=to, body=body, attempted_at=attempted_at,
                known_sids=self.known_sids,
            )  # fmt: skip
            if found is not None:
                self.known_sids.add(found.sid)
            return found


def is_verdict_on_record(error: TwilioError) -> bool:
    """True when a failed look-up is Twilio's own answer about this recipient (e.g. it
    refuses the number as a filter): then the record may end as "outcome unknown". Any
    other failure (Twilio down, a proxy's page, refused credentials, throttling that
    outlasted the retries) says nothing about the record, which stays to be checked later.
    """
    return isinstance(error, ApiError) and error.kind in (ErrorKind.RECIPIENT, ErrorKind.RECORD)


def outcome_unknown(reason: str) -> str:
    """The result message when nobody can tell whether a message went out."""
    return (
        f"outcome unknown: the message may or may not have been sent ({reason}); "
        "check Twilio's message log before sending to this recipient again"
    )


async def find_sent(
    client: TwilioClient,
    *,
    to: str,
    body: str,
    attempted_at: datetime,
    known_sids: Container[str] = (),
) -> Message | None:
    """The message this attempt created, or None when Twilio has none.

    Raises TwilioError when Twilio cannot be asked: then the outcome stays unknown.
    """
    since = attempted_at - CLOCK_SKEW
    async for page in client.list_messages(to=to, page_size=PAGE_SIZE):
        for message in page:
            created = message.date_created
            if created is not None and created < since:
                return None  # newest first: everything further is older than the attempt
            # A Messaging Service may append opt-out text: ours is then the beginning.
            ours = message.body is not None and message.body.startswith(body)
            if ours and message.sid not in known_sids:
                return message
    return None


async def settle_posting(
    store: Store,
    reconciler: Reconciler,
    run_id: int,
    *,
    writer: ProgressWriter,
    tracker: Acceptor,
    counters: RunCounters,
    timings: Timings,
    part: int | None = None,
) -> None:
    """Settle a resumed run's deliveries (of one `part`, when given) whose POST may have
    reached Twilio before it stopped.

    Each is looked up: found -> tracked; proven absent -> PENDING (sent again); Twilio's
    own verdict on the look-up of that recipient -> `error` "outcome unknown". When Twilio
    cannot be asked at all (down, a proxy's error page, refused credentials) the deliveries
    stay POSTING and RunHalted is raised: nothing is decided without Twilio, and a later
    resume checks them again. Never resent without proof. Their number is bounded by the
    sender's claim batch plus the messages accepted in the progress writer's hold (up to
    one and a half poll intervals of sending, engine/pipeline.py), so they are settled
    before sending resumes.
    """
    posting = list(
        store.deliveries.iter_deliveries(run_id, stages=(Stage.POSTING,), with_row=False, part=part)
    )
    if not posting:
        return
    # A POST that left a killed process may still be landing.
    await asyncio.sleep(timings.reconcile_grace_s)
    limit = asyncio.Semaphore(timings.settle_concurrency)
    unanswered: list[TwilioError] = []
    left: list[Delivery] = []

    async def settle(delivery: Delivery) -> None:
        assert delivery.to is not None and delivery.body is not None
        async with limit:
            if unanswered:
                left.append(delivery)  # Twilio cannot be asked: leave the rest POSTING too
                return
            try:
                found = await reconciler.find(
                    to=delivery.to,
                    body=delivery.body,
                    attempted_at=delivery.claimed_at or datetime.now(UTC),
                )
            except TwilioError as error:
                if not is_verdict_on_record(error):
                    unanswered.append(error)
                    left.append(delivery)
                    return
                writer.put(
                    Progress(
                        run_id=run_id,
                        seq=delivery.seq,
                        stage=Stage.DONE,
                        status=ResultStatus.ERROR,
                        error_message=outcome_unknown(
                            f"the run stopped mid-send and Twilio could not be asked: {error}"
                        ),
                    )
                )
                counters.finished(ResultStatus.ERROR)
                return
        if found is None:
            writer.put(
                Progress(
                    run_id=run_id,
                    seq=delivery.seq,
                    stage=Stage.PENDING,
                    claimed_at=delivery.claimed_at,
                )
            )
            return
        counters.posted += 1  # it went out before the stop: sent, though not by this process
        tracker.accept(delivery.seq, found)

    await asyncio.gather(*(settle(d) for d in posting))
    writer.flush()  # PENDING ones must be claimable before sending starts
    if unanswered:
        raise RunHalted(
            say(
                "Twilio could not be asked whether %(count)s interrupted message(s) went out "
                "(%(error)s); nothing was sent, and they are checked again when the run "
                "resumes",
                count=len(left),
                error=unanswered[0],
            )
        )
