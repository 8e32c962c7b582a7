"""Finding out whether a POST whose answer was lost created a message.

The send API has no idempotency key, so after a read timeout, a reset connection or a
crash mid-request the only safe way forward is to ask Twilio: list the messages to that
number since the attempt began and look for ours (same body, a sid this run has not
claimed). Found: track it. Proven absent: send it. Cannot tell: the caller reports
"outcome unknown" rather than risk a second message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container
from datetime import UTC, datetime, timedelta

from smslink.engine.counters import RunCounters
from smslink.engine.progress_writer import ProgressWriter
from smslink.engine.track import Tracker
from smslink.models import Connection, Delivery, Progress, ResultStatus, Stage
from smslink.store import Store
from smslink.twilio import Message, TwilioClient, TwilioError

#: Clock difference tolerated between this machine and Twilio.
CLOCK_SKEW = timedelta(minutes=5)
#: Messages per page when looking: a recipient rarely gets more than a few a day.
PAGE_SIZE = 50
#: Look-ups in flight at once when a resumed run settles its POSTING deliveries.
SETTLE_CONCURRENCY = 10


def outcome_unknown(reason: str) -> str:
    """The result message when nobody can tell whether a message went out."""
    return (
        f"outcome unknown: the message may or may not have been sent ({reason}); "
        "check Twilio's message log before sending to this recipient again"
    )


async def find_sent(
    client: TwilioClient,
    connection: Connection,
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
    pages = client.list_messages(to=to, from_number=connection.from_filter, page_size=PAGE_SIZE)
    async for page in pages:
        for message in page:
            created = message.date_created
            if created is not None and created < since:
                return None  # newest first: everything further is older than the attempt
            if message.body == body and message.sid not in known_sids:
                return message
    return None


async def settle_posting(
    store: Store,
    client: TwilioClient,
    connection: Connection,
    run_id: int,
    *,
    writer: ProgressWriter,
    tracker: Tracker,
    counters: RunCounters,
    known_sids: set[str],
) -> None:
    """Settle a resumed run's deliveries whose POST may have reached Twilio before it stopped.

    Each is looked up: found -> tracked; proven absent -> PENDING (sent again); lookup
    failed -> `error` "outcome unknown". Never resent without proof. Their number is
    bounded by the sender's claim batch, so they are settled before sending resumes.
    """
    posting = list(store.iter_deliveries(run_id, stages=(Stage.POSTING,), with_row=False))
    limit = asyncio.Semaphore(SETTLE_CONCURRENCY)

    async def settle(delivery: Delivery) -> None:
        assert delivery.to is not None and delivery.body is not None
        async with limit:
            try:
                found = await find_sent(
                    client,
                    connection,
                    to=delivery.to,
                    body=delivery.body,
                    attempted_at=delivery.claimed_at or datetime.now(UTC),
                    known_sids=known_sids,
                )
            except TwilioError as error:
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
            writer.put(Progress(run_id=run_id, seq=delivery.seq, stage=Stage.PENDING))
            return
        known_sids.add(found.sid)
        tracker.accept(delivery.seq, found)

    await asyncio.gather(*(settle(d) for d in posting))
    writer.flush()  # PENDING ones must be claimable before sending starts
