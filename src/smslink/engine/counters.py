"""Live numbers of a run, for progress bars and summaries.

Plain counters updated in place by the pipeline and read by whoever shows them (the CLI's
progress bar polls them); no callbacks, so showing progress never slows sending down.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from smslink.domain.models import ResultStatus


@dataclass(slots=True)
class RunCounters:
    total: int = 0  # records in the audience (known once ingested)
    ingested: int = 0
    posted: int = 0  # messages Twilio accepted
    done: int = 0  # records with a final result
    by_status: Counter[str] = field(default_factory=Counter)
    #: Requests Twilio answered 429, and the requests in flight the run settled at (set
    #: when sending and tracking end): how a user learns the account's real limit.
    throttled: int = 0
    settled_concurrency: int | None = None

    @property
    def errors(self) -> int:
        return self.by_status[ResultStatus.ERROR]

    def finished(self, status: ResultStatus, count: int = 1) -> None:
        self.done += count
        self.by_status[status] += count
