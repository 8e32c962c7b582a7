"""The REST API for runs: what the run pages do, as JSON.

Start a run by uploading an audience with a touchpoint (`POST /api/runs`, multipart; the
same check and preview as the page, `POST /api/runs/preview` without sending), watch it
(`GET /api/runs/{id}`, or the Server-Sent Events of `/events`), read its records a page at a
time with filters, download its results as CSV, stop and resume it, and send again to those
who did not get the message (`GET` the plan of `/again`, `POST` to start it). Every
refusal is the one error shape of `smslink.web.errors`; a repeated send is a 422 whose
remedy is `send_again`, and is sent anyway with `again`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from smslink.app.runs import UPLOAD_SUFFIXES
from smslink.domain.models import Delivery, Run
from smslink.web.api.common import (
    DeliveryFieldsOut,
    Id,
    PageNumber,
    api_router,
    delivery_fields,
    errors,
    marketer,
    smslink,
)
from smslink.web.errors import api_error
from smslink.web.forms import text
from smslink.web.progress import (
    download,
    event_stream,
    progress_of,
    resume,
    start_again,
    timeline_of,
)
from smslink.web.run_words import again_reasons
from smslink.web.runner import RunExecutor
from smslink.web.uploads import (
    Staged,
    UploadTooLarge,
    limited_form,
    max_upload_bytes,
    stage_upload,
    start_upload,
    too_large_message,
)

router = api_router("runs")


class ProgressOut(BaseModel):
    records: int = Field(description="Records in the audience.")
    read: int = Field(description="Records read and stored so far.")
    sent: int = Field(description="Messages Twilio accepted.")
    final: int = Field(description="Records with their final result.")
    percent: float = Field(description="final / records, in percent.")
    by_status: dict[str, int] = Field(description="Final results by status.")
    problems: int = Field(description="Final results other than delivered.")
    active: bool = Field(description="The run is being sent (here or by another process).")
    here: bool = Field(description="This service is sending it.")


class RunOut(BaseModel):
    id: int
    touchpoint: str
    connection: str
    state: str = Field(description="created, sending, interrupted, stopped or completed")
    origin: str = Field(description="What started it: web or cli.")
    audience: str = Field(description="The audience file's name.")
    created_at: datetime
    finished_at: datetime | None
    error: str | None = Field(description="Why it stopped, when it did.")
    progress: ProgressOut


class DeliveryOut(DeliveryFieldsOut):
    row: dict[str, str] = Field(description="The input record as read.")


class DeliveryPageOut(BaseModel):
    page: int
    per_page: int
    pages: int
    matching: int = Field(description="Records matching the filter over all pages.")
    deliveries: list[DeliveryOut]


class PreviewMessageOut(BaseModel):
    record: int
    to: str
    body: str
    encoding: str
    segments: int


class PreviewProblemOut(BaseModel):
    record: int
    reason: str


class PreviewOut(BaseModel):
    touchpoint: str
    records: int
    messages: int = Field(description="Records that would be sent.")
    segments: int
    would_fail: int = Field(description="Records that would end with error, and why below.")
    by_encoding: dict[str, int]
    first_messages: list[PreviewMessageOut]
    problems: list[PreviewProblemOut] = Field(description="The first 20 records that fail.")


class AgainGroupOut(BaseModel):
    status: str
    error_code: int | None
    reason: str = Field(description="The rule's reason (smslink.engine.again.Reason).")
    sends: bool = Field(description="These records are sent again.")
    explanation: str
    example: str | None = Field(description="The first record's error message.")
    records: int


class AgainPlanOut(BaseModel):
    run: int
    touchpoint: str
    considered: int = Field(description="Records that ended undelivered, failed or error.")
    chosen: int = Field(description="Records a new run would send to.")
    groups: list[AgainGroupOut]


class AgainIn(BaseModel):
    again: bool = Field(False, description="Send although the same records got it recently.")


class TimelineOut(BaseModel):
    start: float = Field(description="The run's start, seconds since 1970 (UTC).")
    now: float = Field(description="When this was counted, in the same seconds.")
    width_s: int
    statuses: list[str]
    points: list[dict[str, int]] = Field(
        description="Cumulative final results by status at `t` seconds after the start."
    )


_MULTIPART = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["touchpoint", "file"],
                    "properties": {
                        "touchpoint": {"type": "string"},
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The audience: " + ", ".join(UPLOAD_SUFFIXES),
                        },
                        "encoding": {
                            "type": "string",
                            "description": "A CSV's text encoding when not UTF-8 (cp1252...).",
                        },
                        "again": {
                            "type": "boolean",
                            "description": "Send although it is a repeat of a recent send.",
                        },
                    },
                }
            }
        },
    }
}


@router.get("/runs", response_model=list[RunOut])
def list_runs(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[RunOut]:
    """The newest runs first."""
    marketer(request)
    app, runner = smslink(request), request.app.state.executor
    return [run_out(d.run, progress_of(app, runner, d.run, d.totals)) for d in app.runs.list(limit)]


@router.post(
    "/runs", status_code=201, response_model=RunOut, openapi_extra=_MULTIPART,
    responses=errors(409, 413),
)  # fmt: skip
async def start_run(request: Request) -> Response:
    """Upload an audience and send a touchpoint to it: checked like the page's preview,
    then started in the service."""
    marketer(request)
    app, runner = smslink(request), _runner(request)
    staged = await _staged(request)
    if isinstance(staged, Response):
        return staged
    upload, details = staged
    try:
        run_id = await start_upload(app, runner, upload, details["staged"], again=details["again"])
    except BaseException:
        app.runs.discard_upload(upload)
        raise
    run = app.runs.get(run_id)
    body = run_out(run, progress_of(app, runner, run))
    return JSONResponse(
        body.model_dump(mode="json"), status_code=201, headers={"Location": f"/api/runs/{run_id}"}
    )


@router.post(
    "/runs/preview", response_model=PreviewOut, openapi_extra=_MULTIPART,
    responses=errors(409, 413),
)  # fmt: skip
async def preview_run(request: Request) -> Response:
    """What sending the touchpoint to the uploaded audience would do; nothing is kept."""
    marketer(request)
    app = smslink(request)
    staged = await _staged(request)
    if isinstance(staged, Response):
        return staged
    upload, details = staged
    app.runs.discard_upload(upload)
    s: Staged = details["staged"]
    out = PreviewOut(
        touchpoint=s.touchpoint,
        records=s.records,
        messages=s.messages,
        segments=s.segments,
        would_fail=s.problem_count,
        by_encoding=s.by_encoding,
        first_messages=[PreviewMessageOut(**row) for row in s.rows],
        problems=[PreviewProblemOut(record=n, reason=r) for n, r in s.problems],
    )
    return JSONResponse(out.model_dump(mode="json"))


@router.get("/runs/{run_id}", response_model=RunOut, responses=errors(404))
def get_run(request: Request, run_id: Id) -> RunOut:
    marketer(request)
    app = smslink(request)
    run = app.runs.get(run_id)
    return run_out(run, progress_of(app, _runner(request), run))


@router.get("/runs/{run_id}/deliveries", response_model=DeliveryPageOut, responses=errors(404))
def list_deliveries(
    request: Request,
    run_id: Id,
    status: str = "",
    q: str = "",
    page: PageNumber = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeliveryPageOut:
    """The run's records in input order, a page at a time; `status` one of delivered,
    sent, undelivered, failed, error, unfinished, problems; `q` text in the phone, the
    input row or the error message."""
    marketer(request)
    found = smslink(request).runs.deliveries(
        run_id, status=status, text=q, page=page, per_page=per_page
    )
    return DeliveryPageOut(
        page=found.page,
        per_page=found.per_page,
        pages=found.pages,
        matching=found.matching,
        deliveries=[delivery_out(d) for d in found.deliveries],
    )


@router.get(
    "/runs/{run_id}/results.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The results file."},
        **errors(404),
    },
)
async def results_csv(request: Request, run_id: Id, problems: bool = False) -> Response:
    """The run's results as they stand: every record (records not final yet say
    `unfinished`), or with `problems` only those that ended error, undelivered, failed or
    sent without a receipt. Spreadsheet-safe, in the audience's delimiter."""
    marketer(request)
    app = smslink(request)
    return await download(app, app.runs.get(run_id), problems=problems)


@router.post("/runs/{run_id}/stop", response_model=RunOut, responses=errors(404, 409))
def stop_run(request: Request, run_id: Id) -> RunOut:
    """Ask the run to stop (resumably); it stops within about a second."""
    marketer(request)
    app = smslink(request)
    app.runs.stop(run_id)
    run = app.runs.get(run_id)
    return run_out(run, progress_of(app, _runner(request), run))


@router.post(
    "/runs/{run_id}/resume", status_code=202, response_model=RunOut, responses=errors(404, 409)
)
async def resume_run(request: Request, run_id: Id) -> RunOut:
    """Send the rest of a stopped or interrupted run, in this service."""
    marketer(request)
    app, runner = smslink(request), _runner(request)
    resume(app, runner, run_id)
    run = app.runs.get(run_id)
    return run_out(run, progress_of(app, runner, run))


@router.get("/runs/{run_id}/again", response_model=AgainPlanOut, responses=errors(404, 409))
def again_plan(request: Request, run_id: Id) -> AgainPlanOut:
    """Which records a new run would send to again, and why (the rule is in the
    documentation of `smslink.engine.again`); nothing is sent."""
    marketer(request)
    plan = smslink(request).runs.plan_again(run_id)
    reasons = again_reasons()
    return AgainPlanOut(
        run=plan.run_id,
        touchpoint=plan.touchpoint,
        considered=plan.considered,
        chosen=plan.chosen,
        groups=[
            AgainGroupOut(
                status=group.status,
                error_code=group.code,
                reason=str(group.reason),
                sends=group.reason.sends,
                explanation=reasons[str(group.reason)],
                example=group.example,
                records=count,
            )
            for group, count in plan.sorted_groups()
        ],
    )


@router.post(
    "/runs/{run_id}/again", status_code=201, response_model=RunOut, responses=errors(404, 409)
)
async def send_again(request: Request, run_id: Id, body: AgainIn | None = None) -> JSONResponse:
    """Start a new run of the touchpoint (as it is now) to the records the plan chooses."""
    marketer(request)
    app, runner = smslink(request), _runner(request)
    new_id = await start_again(app, runner, run_id, again=bool(body and body.again))
    run = app.runs.get(new_id)
    out = run_out(run, progress_of(app, runner, run))
    return JSONResponse(
        out.model_dump(mode="json"), status_code=201, headers={"Location": f"/api/runs/{new_id}"}
    )


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Progress events."},
        **errors(404),
    },
)
async def run_events(request: Request, run_id: Id) -> StreamingResponse:
    """Server-Sent Events: `progress` (the numbers of `GET /api/runs/{id}`'s progress, with
    `rate` in messages per second and `eta_s`) every half second while the run is active,
    then `end`. A stream lasts 15 s at most; EventSource reconnects by itself."""
    marketer(request)
    return await event_stream(request, smslink(request), _runner(request), run_id)


@router.get("/runs/{run_id}/timeline", response_model=TimelineOut, responses=errors(404))
def run_timeline(request: Request, run_id: Id) -> TimelineOut:
    """Final results over the run's lifetime, cumulative by status, in up to 60 steps."""
    marketer(request)
    return TimelineOut(**timeline_of(smslink(request), run_id))


def run_out(run: Run, progress: dict[str, Any]) -> RunOut:
    return RunOut(
        id=run.id,
        touchpoint=run.touchpoint,
        connection=run.connection,
        state=str(run.state),
        origin=run.origin,
        audience=Path(run.input_path).name,
        created_at=run.created_at,
        finished_at=run.finished_at,
        error=progress["error"],
        progress=ProgressOut(**{k: progress[k] for k in ProgressOut.model_fields}),
    )


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(**delivery_fields(d), row=d.row)


def _runner(request: Request) -> RunExecutor:
    runner: RunExecutor = request.app.state.executor
    return runner


async def _staged(request: Request) -> tuple[Any, dict[str, Any]] | Response:
    """The posted audience saved and checked (the page's steps), or the refusal."""
    app = smslink(request)
    limit = max_upload_bytes(request)
    try:
        posted = await limited_form(request, limit, csrf=False)
    except UploadTooLarge:
        return api_error(413, "too_large", too_large_message(limit))
    values = {
        "touchpoint": text(posted, "touchpoint"),
        "encoding": text(posted, "encoding"),
    }
    try:
        upload = await stage_upload(app, posted.get("file"), values, limit)
    except UploadTooLarge:
        return api_error(413, "too_large", too_large_message(limit))
    staged = Staged.load(upload)
    return upload, {"staged": staged, "again": text(posted, "again") in ("1", "true")}
