"""Finding out whether a POST whose answer was lost created a message.

The send API has no idempotency key, so after a read timeout, a reset connection or a
crash mid-request the only safe way forward is to ask Twilio: list the messages to that
number since the attempt began and look for ours (same body, a sid this run has not
claimed). Found: track it. Proven absent: send it. Cannot tell: the caller reports
"outcome unknown" rather than risk a second message.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime, timedelta

from smslink.models import Connection
from smslink.twilio import Message, TwilioClient

#: Clock difference tolerated between this machine and Twilio.
CLOCK_SKEW = timedelta(minutes=5)
#: Messages per page when looking: a recipient rarely gets more than a few a day.
PAGE_SIZE = 50


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
