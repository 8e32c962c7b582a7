"""Workers: runs sent by several processes on several machines, through a job queue.

The embedded default (SQLite, `smslink send`, `smslink serve`) executes each run in the
process that started it. A shared deployment (the store on PostgreSQL) can instead queue
a run's work as jobs for `smslink worker` processes: procrastinate (smslink/jobs) hands
each job to one worker, and the jobs are the engine's (engine/parts.py):

- **a part** (`smslink.send_part`, per run and part): one worker at a time sends one
  part of a run, under the part's lease; a run's parts go to all workers at once;
- **tracking** (`smslink.track_run`, per run): one worker polls what the parts sent and
  completes the run, so tracking costs the same however many workers send;
- **a journey** (`smslink.journey`, per standing run): the whole run in one worker, as
  in one process, sending what the journey API stores;
- **stalled jobs**: every worker looks, each heartbeat, for jobs of a worker whose
  heartbeat stopped (SIGKILL, a machine gone, a paused process) and queues them again;
  the lease of what they held decides when another worker may take it over, and what was
  in flight is reconciled with Twilio before anything is sent again.

The process that has the audience file reads it into the store before the jobs are
queued; workers need the database and Twilio, never the file. Results files are written
by the face that asked for them (`send --queue` waits and writes it; `runs export` any
time; the web pages build it on download).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from smslink.app.queues import JOBS, JOURNEY_JOB, PART_JOB, TRACK_JOB, WorkerSettings
from smslink.domain.errors import ConfigurationRefused, say
from smslink.engine import RunCounters, Timings
from smslink.engine.parts import store_audience
from smslink.store import Store, WorkerRow

if TYPE_CHECKING:  # procrastinate is imported where jobs are queued or run, not before
    from smslink.jobs import JobQueue


async def queue_job(jobs: JobQueue, name: str, run_id: int, part: int | None = None) -> bool:
    """Queue job `name` for run `run_id` (and `part`), unless the same job is waiting
    already (False then); two of the same job never run at once."""
    kind = JOBS[name]
    lock = f"{name}:{run_id}" if part is None else f"{name}:{run_id}:{part}"
    args: dict[str, int] = {"run_id": run_id} if part is None else {"run_id": run_id, "part": part}
    return await jobs.defer(name, queue=kind.queue, lock=lock, priority=kind.priority, **args)


class Work:
    """Queuing runs for workers, and being one (`smslink worker`)."""

    def __init__(
        self,
        store: Store,
        timings: Timings,
        *,
        enabled: bool = False,
        pacing_url: str | None = None,
    ) -> None:
        self._store = store
        self._timings = timings
        self._enabled = enabled
        self._pacing_url = pacing_url

    @property
    def shares_pacing(self) -> bool:
        """True when workers share each account's window and each sender's cap (Redis);
        False: each worker paces on its own."""
        return self._pacing_url is not None

    def available(self) -> bool:
        """True when runs can go to workers: the store is on PostgreSQL."""
        return self._store.url.startswith("postgresql")

    @property
    def enabled(self) -> bool:
        """True when the service hands the runs it starts to workers (SMSLINK_WORKERS=on).
        Raises ConfigurationRefused when that is asked of a store that cannot."""
        if self._enabled and not self.available():
            raise ConfigurationRefused(
                say(
                    "SMSLINK_WORKERS is on, but workers need the store on PostgreSQL: set "
                    "SMSLINK_DATABASE_URL to the shared database, or turn SMSLINK_WORKERS off"
                )
            )
        return self._enabled

    async def enqueue(self, run_id: int, counters: RunCounters | None = None) -> list[int]:
        """Read the rest of the run's audience into the store here, then queue its parts
        and its tracking for the workers; the parts queued. A stopped or interrupted run
        is resumed the same way."""
        parts = await store_audience(
            self._store, run_id, counters or RunCounters(), timings=self._timings
        )
        from smslink.jobs import JobQueue

        async with JobQueue(self._store.url) as jobs:
            # Tracking first: a worker whose job slots are all taken by parts would
            # otherwise start tracking only once most of the run is sent.
            await queue_job(jobs, TRACK_JOB, run_id)
            for part in parts:
                await queue_job(jobs, PART_JOB, run_id, part)
        return parts

    async def wake_journey(self, run_id: int) -> bool:
        """Make sure a worker sends journey run `run_id` (queued at most once while it
        waits); False when a job for it was already waiting."""
        from smslink.jobs import JobQueue

        self._store.runs.update_run(run_id, queued=True)
        async with JobQueue(self._store.url) as jobs:
            return await queue_job(jobs, JOURNEY_JOB, run_id)

    def live(self, *, within_s: float = 60.0) -> list[WorkerRow]:
        """Workers seen in the last `within_s` seconds, with their runs and rates."""
        since = datetime.now(UTC) - timedelta(seconds=within_s)
        return self._store.workers.seen_since(since)

    def holders(self, run_id: int) -> dict[str, list[int | None]]:
        """Who works on the run now: each process with the parts it holds (None: the
        run itself, i.e. its tracking or the whole run)."""
        return self._store.runs.holders(run_id, now=datetime.now(UTC))

    async def run_worker(
        self,
        settings: WorkerSettings,
        *,
        stop: asyncio.Event,
        on_started: Callable[[str], None] | None = None,
    ) -> None:
        """Be a worker until `stop` is set: then take no more jobs, let the requests in
        flight finish, give back what is left (queued again for other workers) and
        return."""
        from smslink.app.worker import Worker  # procrastinate: imported by workers only

        worker = Worker(self._store, self._timings, settings, pacing_url=self._pacing_url)
        await worker.run(stop, on_started)
