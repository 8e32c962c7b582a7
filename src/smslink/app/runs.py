"""Runs: sending a touchpoint to an audience, watching it, resuming it, and its results.

`start` checks everything and stores the run (nothing is sent yet); `execute` does the
work and is also how a stopped or interrupted run is resumed; `export` writes a run's
results as they stand, for any run, at any time. A face shows progress by reading the
`RunCounters` it hands to `execute`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smslink.app.touchpoints import Touchpoints
from smslink.domain.models import Run, RunTotals
from smslink.engine import (
    ExportSummary,
    PreviewTotals,
    RunCounters,
    RunRequest,
    Timings,
    dry_run,
    execute_run,
    export_results,
    redirect_results,
    request_stop,
    start_run,
)
from smslink.store import Store

__all__ = ["RunDetails", "RunRequest", "Runs"]


@dataclass(frozen=True, slots=True)
class RunDetails:
    """A run with its counts by stage and by result status."""

    run: Run
    totals: RunTotals


class Runs:
    """The runs of one store."""

    def __init__(self, store: Store, timings: Timings, touchpoints: Touchpoints) -> None:
        self._store = store
        self._timings = timings
        self._touchpoints = touchpoints

    def dry_run(
        self,
        touchpoint: str,
        audience: Path,
        output: Path,
        *,
        encoding: str | None = None,
        overwrite: bool = False,
    ) -> PreviewTotals:
        """Write the results file a send would start from (`ready` or `error` per record);
        nothing is stored or sent."""
        recipe = self._touchpoints.recipe(touchpoint)
        return dry_run(recipe, audience, output, encoding, overwrite=overwrite)

    def start(self, request: RunRequest) -> int:
        """Check the touchpoint, connection, audience and output, and store the run; its id.

        Raises InvalidInput (RepeatedSend among them) with nothing stored when one cannot
        be used."""
        return start_run(self._store, request, timings=self._timings)

    async def execute(self, run_id: int, counters: RunCounters) -> Run:
        """Read, send and track what the run still has to do, then write its results.

        The same call finishes an interrupted or stopped run. Raises Halted (the run
        stopped, resumable), Busy (another process holds it) or InvalidInput (its audience
        file changed)."""
        return await execute_run(self._store, run_id, counters, timings=self._timings)

    def stop(self, run_id: int) -> Run:
        """Ask the process sending the run to stop it, resumably, within about a second;
        a run that is not being sent is returned as it is."""
        return request_stop(self._store, run_id)

    def redirect(self, run_id: int, output: Path, *, overwrite: bool = False) -> Run:
        """Have the run write its results to `output` from now on."""
        return redirect_results(self._store, run_id, output, overwrite=overwrite)

    def export(self, run_id: int, output: Path, *, overwrite: bool = False) -> ExportSummary:
        """Write the run's results as they stand now to `output`."""
        run = self._store.runs.get_run(run_id)
        return export_results(self._store, run, output, overwrite=overwrite)

    def to_resume(self, origin: str) -> list[Run]:
        """Runs of `origin` left `sending` or `interrupted` when their process went away."""
        return self._store.runs.runs_to_resume(origin)

    def show(self, run_id: int) -> RunDetails:
        return RunDetails(self._store.runs.get_run(run_id), self._store.deliveries.totals(run_id))

    def list(self, limit: int = 20) -> list[RunDetails]:
        """The newest runs first."""
        return [
            RunDetails(run, self._store.deliveries.totals(run.id))
            for run in self._store.runs.list_runs(limit)
        ]
