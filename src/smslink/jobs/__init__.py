"""The job queue of shared deployments: procrastinate on the store's PostgreSQL.

smslink does not build a job system: procrastinate keeps the jobs in PostgreSQL (the
store's own database, its tables installed by the store's migrations), hands each to one
worker (`FOR UPDATE SKIP LOCKED`), keeps two jobs with the same lock from running at
once, and keeps a heartbeat per worker, so the jobs of a worker that died (SIGKILL, a
machine gone) are found and queued again. This module only adapts it: what a job is for
is the application's business (smslink/app/work.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import procrastinate
from procrastinate import exceptions as job_errors
from procrastinate.worker import Worker
from sqlalchemy import make_url

__all__ = ["JobQueue", "RetryLater", "conninfo_of"]


class RetryLater(Exception):
    """Raised by a job that cannot do its work yet (another worker still holds what it
    needs): procrastinate runs it again a little later."""


def conninfo_of(database_url: str) -> str:
    """The libpq connection string of a store's SQLAlchemy URL (`postgresql+psycopg://`),
    with its options (a schema on the search path, say) kept."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError("workers need the store on PostgreSQL")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class JobQueue:
    """procrastinate's App over the store's database. Open it (`async with queue:`)
    before deferring jobs or running a worker."""

    def __init__(self, database_url: str) -> None:
        connector = procrastinate.PsycopgConnector(
            conninfo=conninfo_of(database_url),
            # A few connections: a worker's jobs talk to the store, not to the queue.
            min_size=1,
            max_size=4,
        )
        self.app = procrastinate.App(connector=connector)

    async def __aenter__(self) -> JobQueue:
        await self.app.open_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.close_async()

    def task(
        self,
        name: str,
        func: Callable[..., Awaitable[None]],
        *,
        retry_on: type[Exception] = RetryLater,
        retry_wait_s: int = 2,
    ) -> None:
        """Register `func` as the job `name` (only a worker needs to): it is tried again
        after `retry_wait_s` whenever it raises `retry_on`, as often as it takes."""
        self.app.task(
            name=name,
            retry=procrastinate.RetryStrategy(
                max_attempts=1_000_000, wait=retry_wait_s, retry_exceptions={retry_on}
            ),
        )(func)

    async def defer(
        self, name: str, *, queue: str, lock: str, priority: int = 0, **args: Any
    ) -> bool:
        """Queue the job `name` with `args` on `queue`, unless the same job (`lock`) is
        already waiting; two jobs with one lock never run at the same time. Waiting jobs
        of a higher `priority` are taken first. False when it was already waiting."""
        deferrer = self.app.configure_task(
            name=name, queue=queue, lock=lock, queueing_lock=lock, priority=priority
        )
        try:
            await deferrer.defer_async(**args)
        except job_errors.AlreadyEnqueued:
            return False
        return True

    async def work(
        self,
        *,
        jobs: int,
        queues: Iterable[str] | None,
        heartbeat_s: float,
        stalled_s: float,
        stop: asyncio.Event,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        """Run a worker taking up to `jobs` jobs at once until `stop` is set; then it
        takes no more and returns once the jobs in hand have returned."""
        worker = Worker(
            self.app,
            queues=list(queues) if queues else None,
            concurrency=jobs,
            install_signal_handlers=False,
            update_heartbeat_interval=heartbeat_s,
            stalled_worker_timeout=stalled_s,
            fetch_job_polling_interval=1.0,
            abort_job_polling_interval=1.0,
            delete_jobs="successful",
        )
        running = asyncio.create_task(worker.run())
        if on_started is not None:
            on_started()
        waiting = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
            worker.stop()
            await running
        finally:
            waiting.cancel()

    async def requeue_stalled(self, *, stalled_s: float) -> list[int]:
        """Queue again the jobs of workers whose heartbeat is older than `stalled_s`
        (killed, or paused): their ids. The job's own lease decides when it may start."""
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_s)
        again: list[int] = []
        for job in stalled:
            try:
                await manager.retry_job(job)
            except Exception:  # finished or queued again by another worker meanwhile
                continue
            assert job.id is not None
            again.append(job.id)
        return again
