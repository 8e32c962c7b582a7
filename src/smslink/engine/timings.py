"""Every wait, retry and batch size of a run, in one typed place.

The engine reads none of these from module globals or the environment: a face builds one
`Timings` (from its configuration, e.g. `SMSLINK_LEASE_TTL_S`) and passes it down, and a
test that is about the order of events, not the waiting, passes short ones. The defaults
are what production uses; each says why it is what it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from smslink.twilio.client import RetryPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class Timings:
    #: Seconds to wait before asking Twilio about a POST whose answer was lost (a timeout,
    #: a reset, a 5xx, a crash mid-request), so that a request still in Twilio's hands has
    #: landed and shows up in the listing. Twilio's own processing is well under a second.
    reconcile_grace_s: float = 3.0
    #: Look-ups in flight at once when a resumed run settles its POSTING deliveries.
    settle_concurrency: int = 10
    #: POSTs of one delivery whose answers were lost, each proven absent before the next,
    #: before the run stops as "Twilio is struggling". Five keeps a run going through a
    #: steady 5% of 5xx or resets (3e-7 per record), yet stops a failing Twilio.
    max_sends_per_delivery: int = 5
    #: How long one delivery keeps trying while Twilio answers "too busy" (429, 21611)
    #: beyond the client's own retries, before the run stops to be resumed later.
    busy_give_up_s: float = 600.0
    #: Pause between those tries (jittered between half of it and all of it).
    busy_pause_s: float = 2.0
    #: How long a run's lease lasts without renewal. It is renewed every sixth of that, and
    #: a holder stops sending a quarter of it early; a dead holder on this machine is
    #: replaced at once, a holder elsewhere only once its lease has run out.
    lease_ttl_s: float = 60.0
    #: How often a run being sent looks whether someone asked it to stop (one read by
    #: primary key): the Stop button takes effect within about this long.
    stop_check_s: float = 1.0
    #: Records stored per transaction while reading the audience: sending starts after the
    #: first batch, and a crash loses at most one uncommitted batch of reading (not of
    #: sending: every delivery is stored before its POST).
    ingest_batch: int = 250
    #: How often a journey's run looks in the store for records it was not woken for (an
    #: arrival stored by another process) and whether it was sealed.
    intake_check_s: float = 1.0
    #: How often a run's tracking job, on workers, takes on the messages its parts' senders
    #: handed over (TRACKING in the store) and looks whether every part is sent.
    handoff_check_s: float = 1.0
    #: How a run's Twilio client retries what is safe to retry (429, connect failures,
    #: 5xx to a GET): bounded exponential backoff with full jitter.
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: A send of a touchpoint to an audience with the same content as an earlier send of it
    #: is refused while the earlier run is unfinished or within this window after it
    #: started (unless asked for again): the mistakes it catches (a command run twice, two
    #: colleagues sending one file) happen within hours; a deliberate repeat is days later.
    repeat_window: timedelta = timedelta(hours=24)


#: What production uses.
DEFAULT_TIMINGS = Timings()
