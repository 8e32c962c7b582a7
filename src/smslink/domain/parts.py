"""Parts of a run: how workers share one run without two of them writing to one recipient.

Workers send a run part by part, one worker per part at a time (a lease, as a run's own),
so a run of 100,000 records goes out as fast as all workers together can send. A part is
chosen by the recipient's phone number, not by position: every record of one recipient
(the same person twice in an audience) is in the same part, so the one worker sending it
is also the one that reconciles a lost answer to that recipient, and can never take the
message another worker's POST just created for the same person and text.
"""

from __future__ import annotations

from zlib import crc32

#: Parts per run: enough that 8 workers each find several (the last parts of a run finish
#: while the others are still busy, so no worker idles long at the end), few enough that
#: a small run is not a crowd of tiny jobs (only parts that hold records are queued).
PARTS = 32


def part_of(phone: str | None) -> int:
    """The part of a run a record to `phone` belongs to (0 for a record without one: it
    is stored final, never sent)."""
    if not phone:
        return 0
    return crc32(phone.encode()) % PARTS
