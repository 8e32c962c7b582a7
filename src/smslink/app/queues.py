"""The jobs workers take, the queues they wait in, and how a worker works.

Plain values, kept apart from the job queue and the engine that do the work (`work.py`,
`worker.py`), so that the command line can list the queues and show a worker's defaults in
`smslink worker --help` without loading the store, the engine or procrastinate.
"""

from __future__ import annotations

from dataclasses import dataclass

PART_JOB = "smslink.send_part"
TRACK_JOB = "smslink.track_run"
JOURNEY_JOB = "smslink.journey"


@dataclass(frozen=True, slots=True)
class JobKind:
    """Where a kind of job is queued and how it is taken."""

    #: The queue (`smslink worker --queue` picks queues: e.g. workers for journeys only).
    queue: str
    #: Waiting jobs of a higher priority are taken first: jobs that last as long as their
    #: run (tracking, a journey) turn sending into results and events, and must not wait
    #: behind a long run's parts.
    priority: int


JOBS = {
    PART_JOB: JobKind("sending", 0),
    TRACK_JOB: JobKind("tracking", 10),
    JOURNEY_JOB: JobKind("journeys", 10),
}
#: The queues a worker takes jobs from when not told otherwise: all of them.
QUEUES = tuple(sorted({kind.queue for kind in JOBS.values()}))


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker works; each default is explained where it matters."""

    #: Requests to Twilio in flight at once from this worker, across all its jobs (the
    #: connection's own concurrency still caps each account).
    concurrency: int = 25
    #: Jobs (parts of runs, tracking, journeys) the worker works on at once.
    jobs: int = 8
    #: Queues to take jobs from (`QUEUES`: sending, tracking, journeys); None: every one.
    queues: tuple[str, ...] | None = None
    #: How often the worker tells procrastinate it is alive, and writes its row.
    heartbeat_s: float = 2.0
    #: A worker silent this long is taken for dead: its jobs are queued again. With the
    #: lease below it bounds how long a killed worker's records wait (about both added).
    stalled_s: float = 10.0
    #: How long what a worker holds (a part, a run's tracking) stays its own without
    #: renewal: another worker takes it over after this (at once when the holder was a
    #: process on the same machine that is gone).
    lease_ttl_s: float = 20.0
    #: How often a worker makes sure every part and tracking of a queued run has a job
    #: (see app/worker.py `_sweep`): what a lost job costs at most, about twice this.
    sweep_s: float = 5.0
