"""Runs: sending a touchpoint to an audience, watching it, resuming it, and its results.

`start` checks everything and stores the run (nothing is sent yet); `execute` does the
work and is also how a stopped or interrupted run is resumed; `export` writes a run's
results as they stand, for any run, at any time. A face shows progress by reading the
`RunCounters` it hands to `execute`.

For faces that receive audiences rather than find them on disk (the web), uploads get a
private folder each under the home (`new_upload`, `upload`), where the run later writes
its results too. A run's records are read a page at a time with filters (`deliveries`),
its final results counted over time (`progress_over_time`), its problem records exported
alone (`export_problems`), and those who did not get the message sent to again by one
written rule (`plan_again`, `start_again`; the rule is in `smslink.engine.again`).
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from smslink.app.touchpoints import Preview, Touchpoints
from smslink.audience.readers import CSV_SUFFIXES, JSONL_SUFFIXES, open_audience
from smslink.domain.errors import InvalidInput, Problem, say
from smslink.domain.models import Delivery, Run, RunState, RunTotals
from smslink.engine import (
    ConnectionPacing,
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
from smslink.engine.again import AgainPlan, plan_again, write_again_audience
from smslink.engine.exports import PROBLEM_STATUSES, export_problems
from smslink.store import NotFound, Store
from smslink.store.deliveries import UNFINISHED
from smslink.store.location import smslink_home

__all__ = [
    "STATUS_FILTERS",
    "AgainPlan",
    "DeliveryPage",
    "RunDetails",
    "RunRequest",
    "Runs",
    "Timeline",
    "Upload",
]

#: The audience formats an upload may have (by its name's extension).
UPLOAD_SUFFIXES = tuple(sorted(CSV_SUFFIXES | JSONL_SUFFIXES))
#: The filters of `Runs.deliveries`: a result status, "unfinished" (not final yet) or
#: "problems" (error, undelivered, failed or sent: what `export_problems` writes).
STATUS_FILTERS = (
    "delivered",
    "sent",
    "undelivered",
    "failed",
    "error",
    UNFINISHED,
    "problems",
)
#: Most records on one page of `Runs.deliveries`.
MAX_PER_PAGE = 500
_UPLOAD_ID = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{16}")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class RunDetails:
    """A run with its counts by stage and by result status."""

    run: Run
    totals: RunTotals


@dataclass(frozen=True, slots=True)
class Upload:
    """An audience received by a face: its id (the folder's name) and the file in it."""

    id: str
    path: Path

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def results_path(self) -> Path:
        """Where a run of this audience writes its results: beside it, as CSV (TSV for a
        tab-separated audience)."""
        suffix = ".tsv" if self.path.suffix.lower() == ".tsv" else ".csv"
        return self.folder / f"{self.path.stem}-results{suffix}"


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    """One page of a run's records, with how many match the filter over all pages."""

    deliveries: list[Delivery]
    page: int  # from 1
    per_page: int
    matching: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.matching / self.per_page))


@dataclass(frozen=True, slots=True)
class Timeline:
    """Records that became final, by status, in buckets of `width_s` seconds from `start`."""

    start: datetime
    width_s: int
    buckets: int
    #: (bucket from 0, status, records)
    points: list[tuple[int, str, int]] = field(default_factory=list)


class Runs:
    """The runs of one store."""

    def __init__(self, store: Store, timings: Timings, touchpoints: Touchpoints) -> None:
        self._store = store
        self._timings = timings
        self._touchpoints = touchpoints
        # Every run this application sends at once shares each connection's pacing.
        self._pacing = ConnectionPacing()
        #: Where uploads go; None: `<home>/uploads` (SMSLINK_HOME), made on first use.
        self.uploads_folder: Path | None = None

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

    async def execute(
        self, run_id: int, counters: RunCounters, arrivals: asyncio.Event | None = None
    ) -> Run:
        """Read, send and track what the run still has to do, then write its results.

        The same call finishes an interrupted or stopped run. Runs executing at the same
        time share each connection's request window and segment cap. A journey's run sends what
        arrives until it is sealed; set `arrivals` when records were stored for it. Raises
        Halted (the run stopped, resumable), Busy (another process holds it) or
        InvalidInput (its audience file changed)."""
        return await execute_run(
            self._store,
            run_id,
            counters,
            timings=self._timings,
            arrivals=arrivals,
            pacing=self._pacing,
        )

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

    def get(self, run_id: int) -> Run:
        """The run as stored (without counting its records)."""
        return self._store.runs.get_run(run_id)

    def show(self, run_id: int) -> RunDetails:
        return RunDetails(self._store.runs.get_run(run_id), self._store.deliveries.totals(run_id))

    def list(self, limit: int = 20) -> list[RunDetails]:
        """The newest runs first."""
        return [
            RunDetails(run, self._store.deliveries.totals(run.id))
            for run in self._store.runs.list_runs(limit)
        ]

    # -- audiences received by a face ------------------------------------------------------

    def new_upload(self, filename: str) -> Upload:
        """A new private folder for an audience a face receives, and the path to write it
        to: the file's own name made safe, with its extension, which says its format.
        InvalidInput (field "file") for a name without a known audience extension."""
        suffix = Path(filename).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            raise InvalidInput(
                problems=[
                    Problem(
                        "file",
                        say(
                            "%(name)s is not an audience file: upload a .csv (or .tsv, .txt) "
                            "with a header row, or a .jsonl file (save Excel sheets as CSV "
                            "UTF-8)",
                            name=filename or "?",
                        ),
                    )
                ]
            )
        stem = _UNSAFE_NAME.sub("_", Path(filename).stem).strip("._")[:80] or "audience"
        upload_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(8)
        folder = self._uploads() / upload_id
        folder.mkdir(mode=0o700)
        return Upload(upload_id, folder / f"{stem}{suffix}")

    def upload(self, upload_id: str) -> Upload:
        """The upload `upload_id` (as `new_upload` named it); NotFound when there is none."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise NotFound(say("no upload %(upload)s", upload=repr(upload_id)))
        folder = self._uploads() / upload_id
        files = (
            sorted(p for p in folder.iterdir() if p.suffix.lower() in UPLOAD_SUFFIXES)
            if folder.is_dir()
            else []
        )
        audiences = [p for p in files if not p.stem.endswith("-results")]
        if not audiences:
            raise NotFound(say("no upload %(upload)s", upload=repr(upload_id)))
        return Upload(upload_id, audiences[0])

    def discard_upload(self, upload: Upload) -> None:
        """Remove an upload that no run uses (a refused file, an abandoned preview)."""
        shutil.rmtree(upload.folder, ignore_errors=True)

    def preview(
        self, touchpoint: str, audience: Path, *, encoding: str | None = None, limit: int = 5
    ) -> Preview:
        """What sending `touchpoint` to `audience` would do (`Touchpoints.preview`), after
        the check a send makes first: a CSV audience must have every column the touchpoint
        maps (InvalidInput, field "file", naming them). A file the reader refuses raises
        its AudienceError (field-less InvalidInput) with the reader's words."""
        recipe = self._touchpoints.recipe(touchpoint)
        if audience.suffix.lower() not in JSONL_SUFFIXES:
            with open_audience(audience, encoding) as reader:
                columns = list(reader.columns)
            missing = recipe.missing_columns(columns)
            if missing:
                raise InvalidInput(
                    problems=[
                        Problem(
                            "file",
                            say(
                                "%(file)s has no column %(missing)s (touchpoint %(touchpoint)s "
                                "maps to it); its columns are: %(columns)s",
                                file=audience.name,
                                missing=", ".join(f"'{c}'" for c in missing),
                                touchpoint=f"'{touchpoint}'",
                                columns=", ".join(columns),
                            ),
                        )
                    ]
                )
        return self._touchpoints.preview(touchpoint, audience, encoding=encoding, limit=limit)

    # -- reading a run ---------------------------------------------------------------------

    def deliveries(
        self, run_id: int, *, status: str = "", text: str = "", page: int = 1, per_page: int = 50
    ) -> DeliveryPage:
        """Page `page` (from 1) of the run's records in input order, only those with
        `status` (one of `STATUS_FILTERS`; "" for all) and containing `text` in the
        phone, the input row or the error message (ignoring case; "" for all). A page past
        the last is empty. InvalidInput (field "status") for an unknown status."""
        self._store.runs.get_run(run_id)  # NotFound
        statuses = _statuses(status)
        per_page = min(max(1, per_page), MAX_PER_PAGE)
        page = max(1, page)
        text = text.strip()
        if statuses is None and not text:
            matching = self._store.deliveries.count(run_id)
        else:
            matching = self._store.deliveries.count(run_id, statuses=statuses, text=text or None)
        rows = self._store.deliveries.page(
            run_id,
            statuses=statuses,
            text=text or None,
            offset=(page - 1) * per_page,
            limit=per_page,
        )
        return DeliveryPage(rows, page, per_page, matching)

    def progress_over_time(self, run_id: int, *, buckets: int = 60) -> Timeline:
        """The run's records that became final, by status, over its lifetime (from its
        start to its end, or to now) in at most `buckets` equal steps of whole seconds."""
        run = self._store.runs.get_run(run_id)
        end = run.finished_at or datetime.now(UTC)
        seconds = max(1.0, (end - run.created_at).total_seconds())
        width = max(1, math.ceil(seconds / max(1, buckets)))
        points = self._store.deliveries.final_over_time(run_id, start=run.created_at, width_s=width)
        return Timeline(run.created_at, width, math.ceil(seconds / width), points)

    def export_problems(
        self, run_id: int, output: Path, *, overwrite: bool = False
    ) -> ExportSummary:
        """Write only the records that did not get the message (error, undelivered,
        failed, sent without a receipt) as results to `output`."""
        run = self._store.runs.get_run(run_id)
        return export_problems(self._store, run, output, overwrite=overwrite)

    # -- sending again ---------------------------------------------------------------------

    def plan_again(self, run_id: int) -> AgainPlan:
        """Which of a completed run's records a new run would send to again, and why
        (`smslink.engine.again`), with the touchpoint as it is now. InvalidInput when the
        run is not completed (resume it first) or its touchpoint is gone."""
        run = self._completed(run_id)
        return plan_again(self._store, run, self._touchpoints.recipe(run.touchpoint))

    def start_again(self, run_id: int, *, again: bool = False, origin: str = "cli") -> int:
        """Store a new run of the touchpoint (as it is now) to the records `plan_again`
        chooses; its id. The audience is written to a new upload, the results beside it.
        InvalidInput when nothing is chosen; RepeatedSend (remedy SEND_AGAIN) when the same
        records got it recently, unless `again`."""
        run = self._completed(run_id)
        recipe = self._touchpoints.recipe(run.touchpoint)
        upload = self.new_upload(f"again-run-{run_id}.jsonl")
        try:
            plan = write_again_audience(self._store, run, recipe, upload.path)
            if plan.chosen == 0:
                raise InvalidInput(
                    say(
                        "Run %(run)s has no record worth sending again: every record got the "
                        "message, or did not for a reason another send cannot change.",
                        run=run_id,
                    )
                )
            return self.start(
                RunRequest(
                    run.touchpoint,
                    upload.path,
                    upload.results_path,
                    again=again,
                    origin=origin,
                )
            )
        except BaseException:
            self.discard_upload(upload)
            raise

    def _completed(self, run_id: int) -> Run:
        run = self._store.runs.get_run(run_id)
        if run.state is not RunState.COMPLETED:
            raise InvalidInput(
                say(
                    "Run %(run)s is not completed: only a completed run can be sent again "
                    "(resume it to finish it first).",
                    run=str(run_id),
                )
            )
        return run

    def _uploads(self) -> Path:
        folder = self.uploads_folder or smslink_home() / "uploads"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder


def _statuses(status: str) -> list[str] | None:
    """The store's status filter for one of `STATUS_FILTERS` ("" or None: no filter)."""
    if not status:
        return None
    if status == "problems":
        return [s.value for s in PROBLEM_STATUSES]
    if status not in STATUS_FILTERS:
        raise InvalidInput(
            problems=[
                Problem(
                    "status",
                    say(
                        "%(status)s is not a status to filter by; use one of %(choices)s",
                        status=repr(status),
                        choices=", ".join(STATUS_FILTERS),
                    ),
                )
            ]
        )
    return [status]
