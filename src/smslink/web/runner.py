"""Runs started from the pages (or the API) execute inside the service, in the background,
or, with workers (SMSLINK_WORKERS=on), are read into the store here and queued for them.

A run does not belong to the browser that started it: it goes on when the page is closed,
and when the service stops mid-run the run is `interrupted` and picked up again when the
service starts (runs whose origin is "web", and journeys' standing runs). A journey's run
is started by the first records that arrive for it, and woken by each arrival after.
Each running run has live counters the run page reads once a second; a finished one
leaves its final counts in the store.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from smslink.app import RunCounters, Smslink
from smslink.domain.errors import SmslinkError
from smslink.domain.models import JOURNEY, Run, RunState

log = logging.getLogger("smslink.web")

#: What the service writes in `runs.origin`.
ORIGIN = "web"


@dataclass
class Running:
    """A run the service is executing: its task and its live counters."""

    task: asyncio.Task[None]
    counters: RunCounters = field(default_factory=RunCounters)
    #: Set when records arrive for a journey's run.
    arrivals: asyncio.Event = field(default_factory=asyncio.Event)


class RunExecutor:
    """Starts runs as tasks on the service's event loop and keeps their live counters."""

    def __init__(self, smslink: Smslink) -> None:
        self._smslink = smslink
        self._running: dict[int, Running] = {}
        #: With workers (SMSLINK_WORKERS=on) runs are queued for them, not executed here.
        self._workers = smslink.work.enabled
        self._woken: set[int] = set()  # journey runs a worker was asked to send

    def start(self, run_id: int) -> None:
        """Execute (or resume) run `run_id` in the background; a no-op if it is running.
        With workers: read its audience here and queue it for them."""
        if run_id in self._running and not self._running[run_id].task.done():
            return
        if self._workers and self._smslink.runs.get(run_id).is_journey:
            self._woken.discard(run_id)
            self._wake_worker(run_id)
            return
        counters = RunCounters()
        arrivals = asyncio.Event()
        work = self._enqueue if self._workers else self._execute
        task = asyncio.get_running_loop().create_task(
            work(run_id, counters, arrivals), name=f"smslink-run-{run_id}"
        )
        self._running[run_id] = Running(task, counters, arrivals)

    def arrived(self, run: Run) -> None:
        """Records were stored for journey run `run`: wake its sender, or start it (unless
        someone stopped it: its records wait until it is resumed)."""
        if self._workers:
            if run.id not in self._woken and run.state is not RunState.STOPPED:
                self._wake_worker(run.id)
            return
        running = self._running.get(run.id)
        if running is not None and not running.task.done():
            running.arrivals.set()
        elif run.state is not RunState.STOPPED:
            self.start(run.id)

    def counters(self, run_id: int) -> RunCounters | None:
        """The live counters of a run this service is executing, else None."""
        running = self._running.get(run_id)
        return None if running is None or running.task.done() else running.counters

    def is_running(self, run_id: int) -> bool:
        return self.counters(run_id) is not None

    def resume_interrupted(self) -> list[int]:
        """Start again every web run that was being sent when the service last stopped,
        and every journey's standing run."""
        resumed = [
            run.id for origin in (ORIGIN, JOURNEY) for run in self._smslink.runs.to_resume(origin)
        ]
        for run_id in resumed:
            self.start(run_id)
        return resumed

    async def shutdown(self) -> None:
        """Interrupt every run (they are marked `interrupted`, resumed on the next start)."""
        tasks = [r.task for r in self._running.values() if not r.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _wake_worker(self, run_id: int) -> None:
        """Make sure a worker sends journey run `run_id` (its job is queued once)."""
        self._woken.add(run_id)
        task = asyncio.get_running_loop().create_task(self._smslink.work.wake_journey(run_id))
        task.add_done_callback(lambda done: self._woken_failed(done, run_id))

    def _woken_failed(self, task: asyncio.Task[bool], run_id: int) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("could not queue journey run %s: %s", run_id, task.exception())
            self._woken.discard(run_id)  # the next arrival tries again

    async def _enqueue(self, run_id: int, counters: RunCounters, _: asyncio.Event) -> None:
        try:
            await self._smslink.work.enqueue(run_id, counters)
        except SmslinkError as error:  # the audience changed or cannot be read on, or
            # another process took the run over meanwhile (and queues it if it goes on)
            log.info("run %s was not queued from here: %s", run_id, error)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("run %s could not be queued", run_id)

    async def _execute(self, run_id: int, counters: RunCounters, arrivals: asyncio.Event) -> None:
        try:
            await self._smslink.runs.execute(run_id, counters, arrivals)
        except SmslinkError as error:  # stopped, halted, busy: the run's state says so
            log.info("run %s ended without completing: %s", run_id, error)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: the run is left interrupted, to be resumed
            log.exception("run %s failed", run_id)
