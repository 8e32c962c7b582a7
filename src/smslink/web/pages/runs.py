"""The marketer's run pages: the list, a new run (upload, preview, send), the live run page
(progress, chart, the per-recipient table, downloads, stop and resume) and sending again to
those who did not get the message.

A new run goes in three steps, each a plain form: the upload is copied in chunks into a
private folder the application makes (`Runs.new_upload`), checked and previewed with the
very code a send uses (`Runs.preview`), and shown; nothing is sent before **Send**, which
stores the run (`Runs.start`, origin "web") and hands it to the service's executor. The
preview is kept beside the upload (`preview.json`), so the preview page is a plain GET.

The run page is complete without script; `static/run.js` makes it live (Server-Sent Events
from `/api/runs/{id}/events`, the table refreshed in place, the chart drawn as SVG). What
the REST API does alike lives beside the pages: web/uploads.py (an audience uploaded,
checked and started), web/progress.py (a run's numbers, events, downloads, resume) and
web/run_words.py (the words for states and statuses).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from smslink.app import NotFound, Smslink
from smslink.app.runs import STATUS_FILTERS, UPLOAD_SUFFIXES, AgainPlan, Upload
from smslink.domain.errors import Action, InvalidInput, SmslinkError
from smslink.domain.models import Run, RunState, User
from smslink.web.i18n import file_size, translated
from smslink.web.pages.common import (
    executor,
    field_errors,
    form,
    redirect,
    signed_in,
    smslink,
    text,
)
from smslink.web.progress import download, progress_of, resume, start_again
from smslink.web.run_words import (
    STATUS_ORDER,
    again_reasons,
    stage_labels,
    state_labels,
    status_help,
    status_labels,
)
from smslink.web.templating import render
from smslink.web.uploads import (
    Staged,
    UploadTooLarge,
    check_upload,
    limited_form,
    max_upload_bytes,
    stage_upload,
    start_upload,
    too_large_message,
)

router = APIRouter(include_in_schema=False)

#: Records on one page of the run page's table.
PER_PAGE = 50
#: Encodings offered for a CSV that is not UTF-8 (any codec Python knows is accepted).
ENCODINGS = ("utf-8", "cp1252", "latin-1", "utf-16", "mac_roman", "cp850")


# -- the list --------------------------------------------------------------------------------


@router.get("/runs")
def list_page(request: Request) -> Response:
    user = signed_in(request)
    app = smslink(request)
    runs = app.runs.list(50)
    rows = [
        {"run": d.run, "progress": progress_of(app, executor(request), d.run, d.totals)}
        for d in runs
    ]
    return render(
        request,
        "runs/list.html",
        user,
        rows=rows,
        states=state_labels(),
        statuses=status_labels(),
        status_order=STATUS_ORDER,
    )


# -- a new run -------------------------------------------------------------------------------


@router.get("/runs/sample-audience.csv")
def sample_audience(request: Request) -> Response:
    """The demo's sample audience (with `serve --demo` only), to try a run without one."""
    signed_in(request)
    if not request.app.state.options.demo:
        raise NotFound("no sample audience: the service runs without --demo")
    sample = files("smslink") / "data" / "demo_audience.csv"
    return Response(
        sample.read_bytes(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sample-audience.csv"'},
    )


@router.get("/runs/new")
def new_page(request: Request, touchpoint: str = "") -> Response:
    user = signed_in(request)
    return _new_form(request, user, {"touchpoint": touchpoint, "encoding": ""}, {}, [])


@router.post("/runs/new")
async def upload(request: Request) -> Response:
    user = signed_in(request)
    app = smslink(request)
    limit = max_upload_bytes(request)
    values = {"touchpoint": "", "encoding": ""}
    try:
        posted = await limited_form(request, limit)
        values = {"touchpoint": text(posted, "touchpoint"), "encoding": text(posted, "encoding")}
        staged = await stage_upload(app, posted.get("file"), values, limit)
    except UploadTooLarge:
        errors = {"file": too_large_message(limit)}
        return _new_form(request, user, values, errors, [], status_code=413)
    except InvalidInput as error:
        errors, general = field_errors(error)
        return _new_form(request, user, values, errors, general, status_code=422)
    return redirect(f"/runs/new/{staged.id}")


@router.get("/runs/new/{upload_id}")
def preview_page(request: Request, upload_id: str) -> Response:
    user = signed_in(request)
    staged_upload = smslink(request).runs.upload(upload_id)
    return _preview(request, user, staged_upload, Staged.load(staged_upload))


@router.post("/runs/new/{upload_id}")
async def repreview(request: Request, upload_id: str) -> Response:
    """Check the same upload against another touchpoint or encoding."""
    user = signed_in(request)
    posted = await form(request)
    app = smslink(request)
    staged_upload = app.runs.upload(upload_id)
    before = Staged.load(staged_upload)
    if before.run_id is not None:
        return redirect(f"/runs/new/{upload_id}")
    values = {"touchpoint": text(posted, "touchpoint"), "encoding": text(posted, "encoding")}
    try:
        staged = await check_upload(app, staged_upload, values, before.name, before.size)
    except InvalidInput as error:
        errors, general = field_errors(error)
        return _preview(
            request, user, staged_upload, before, errors=errors, general=general, status_code=422
        )
    staged.save(staged_upload)
    return redirect(f"/runs/new/{upload_id}")


@router.post("/runs/new/{upload_id}/send")
async def send(request: Request, upload_id: str) -> Response:
    user = signed_in(request)
    posted = await form(request)
    app = smslink(request)
    staged_upload = app.runs.upload(upload_id)
    staged = Staged.load(staged_upload)
    if staged.run_id is not None:
        return redirect(f"/runs/{staged.run_id}")
    try:
        run_id = await start_upload(
            app, executor(request), staged_upload, staged, again=_yes(posted)
        )
    except InvalidInput as error:
        return _preview(
            request,
            user,
            staged_upload,
            staged,
            refusal=refusal_of(error),
            status_code=409 if repeated_run(error) is not None else 422,
        )
    return redirect(f"/runs/{run_id}")


@router.post("/runs/new/{upload_id}/discard")
async def discard(request: Request, upload_id: str) -> Response:
    signed_in(request)
    await form(request)
    app = smslink(request)
    with contextlib.suppress(NotFound):
        staged_upload = app.runs.upload(upload_id)
        if Staged.load(staged_upload).run_id is None:  # a run's audience stays
            app.runs.discard_upload(staged_upload)
    return redirect("/runs/new")


def _new_form(
    request: Request,
    user: User,
    values: dict[str, str],
    errors: dict[str, str],
    general: list[str],
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "runs/new.html",
        user,
        status_code=status_code,
        touchpoints=smslink(request).touchpoints.list(),
        values=values,
        errors=errors,
        general=general,
        encodings=ENCODINGS,
        accept=",".join(UPLOAD_SUFFIXES),
        max_bytes=max_upload_bytes(request),
        max_size=file_size(max_upload_bytes(request)),
        sample=request.app.state.options.demo,
    )


def _preview(
    request: Request,
    user: User,
    staged_upload: Upload,
    staged: Staged,
    *,
    errors: Mapping[str, str] | None = None,
    general: list[str] | None = None,
    refusal: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "runs/preview.html",
        user,
        status_code=status_code,
        upload=staged_upload,
        staged=staged,
        size=file_size(staged.size),
        touchpoints=smslink(request).touchpoints.list(),
        encodings=ENCODINGS,
        errors=errors or {},
        general=general or [],
        refusal=refusal,
    )


def repeated_run(error: SmslinkError) -> int | None:
    """The earlier run when `error` refuses a repeated send (remedy SEND_AGAIN)."""
    remedy = error.remedy
    if remedy is not None and remedy.action is Action.SEND_AGAIN:
        earlier = remedy.args.get("run_id")
        return int(earlier) if isinstance(earlier, int | str) and str(earlier).isdigit() else 0
    return None


def refusal_of(error: InvalidInput) -> dict[str, Any]:
    """What a page says about a refused send: a repeat (with a "send anyway"), or why."""
    earlier = repeated_run(error)
    if earlier is not None:
        return {"repeat": earlier, "message": None}
    by_field, general = field_errors(error)
    return {"repeat": None, "message": "; ".join([*general, *by_field.values()])}


def _yes(fields: Mapping[str, Any]) -> bool:
    return text(dict(fields), "again") in ("1", "true", "yes", "on")


# -- the run page ----------------------------------------------------------------------------


@router.get("/runs/{run_id}")
def run_page(
    request: Request, run_id: int, status: str = "", q: str = "", page: int = 1
) -> Response:
    user = signed_in(request)
    app = smslink(request)
    run = app.runs.get(run_id)
    progress = progress_of(app, executor(request), run)
    return render(
        request,
        "runs/run.html",
        user,
        run=run,
        progress=progress,
        table=_table(app, run, status, q, page),
        **_words(),
        stopping=run.state is RunState.SENDING and request.query_params.get("stopping") == "1",
    )


@router.get("/runs/{run_id}/table")
def table_fragment(
    request: Request, run_id: int, status: str = "", q: str = "", page: int = 1
) -> Response:
    """The per-recipient table alone, for run.js to swap in (filter, paging, refresh)."""
    user = signed_in(request)
    app = smslink(request)
    run = app.runs.get(run_id)
    return render(
        request,
        "runs/table.html",
        user,
        run=run,
        table=_table(app, run, status, q, page),
        **_words(),
    )


@router.get("/runs/{run_id}/results.csv")
async def results_csv(request: Request, run_id: int, problems: str = "") -> Response:
    signed_in(request)
    app = smslink(request)
    return await download(app, app.runs.get(run_id), problems=problems in ("1", "true"))


@router.post("/runs/{run_id}/stop")
async def stop(request: Request, run_id: int) -> Response:
    signed_in(request)
    await form(request)
    run = smslink(request).runs.stop(run_id)
    return redirect(f"/runs/{run_id}" + ("?stopping=1" if run.state is RunState.SENDING else ""))


@router.post("/runs/{run_id}/resume")
async def resume_run(request: Request, run_id: int) -> Response:
    signed_in(request)
    await form(request)
    resume(smslink(request), executor(request), run_id)
    return redirect(f"/runs/{run_id}")


@router.get("/runs/{run_id}/again")
async def again_page(request: Request, run_id: int) -> Response:
    user = signed_in(request)
    return await _again(request, user, run_id)


@router.post("/runs/{run_id}/again")
async def again(request: Request, run_id: int) -> Response:
    user = signed_in(request)
    posted = await form(request)
    app = smslink(request)
    try:
        new_id = await start_again(app, executor(request), run_id, again=_yes(posted))
    except InvalidInput as error:
        return await _again(request, user, run_id, refusal=refusal_of(error), status_code=409)
    return redirect(f"/runs/{new_id}")


async def _again(
    request: Request,
    user: User,
    run_id: int,
    *,
    refusal: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    app = smslink(request)
    run = app.runs.get(run_id)
    plan: AgainPlan | None = None
    blocked: str | None = None
    try:
        plan = await asyncio.to_thread(app.runs.plan_again, run_id)
    except (InvalidInput, NotFound) as error:
        blocked = translated(error.args[0]) if error.args else str(error)
    touchpoint = None
    with contextlib.suppress(NotFound):
        touchpoint = app.touchpoints.show(run.touchpoint)
    return render(
        request,
        "runs/again.html",
        user,
        status_code=status_code,
        run=run,
        plan=plan,
        groups=by_reason(plan) if plan else [],
        blocked=blocked,
        touchpoint=touchpoint,
        refusal=refusal,
        reasons=again_reasons(),
        statuses=status_labels(),
    )


def by_reason(plan: AgainPlan) -> list[dict[str, Any]]:
    """The plan's groups under their reason: those sent again first, then the largest."""
    rows: dict[str, dict[str, Any]] = {}
    for group, count in plan.sorted_groups():
        row = rows.setdefault(
            str(group.reason),
            {"reason": str(group.reason), "sends": group.reason.sends, "records": 0, "parts": []},
        )
        row["records"] += count
        row["parts"].append(
            {"status": group.status, "code": group.code, "records": count, "example": group.example}
        )
    return sorted(rows.values(), key=lambda row: (not row["sends"], -row["records"]))


def _table(app: Smslink, run: Run, status: str, q: str, page: int) -> dict[str, Any]:
    status = status if status in STATUS_FILTERS else ""
    found = app.runs.deliveries(run.id, status=status, text=q, page=page, per_page=PER_PAGE)
    phone = run.snapshot.phone_column
    rows = []
    for d in found.deliveries:
        values = [v for k, v in d.row.items() if k != phone and v]
        rows.append(
            {
                "record": d.seq + 1,
                "to": d.to or d.row.get(phone, ""),
                "valid": d.to is not None,
                "status": str(d.status) if d.status is not None else "unfinished",
                "stage": str(d.stage),
                "twilio_status": d.twilio_status,
                "code": d.error_code,
                "message": d.error_message,
                "sid": d.message_sid,
                "fields": " · ".join(values)[:160],
                "updated": d.updated_at,
            }
        )

    def link(to_page: int) -> str:
        query = {k: v for k, v in (("status", status), ("q", q)) if v}
        if to_page > 1:
            query["page"] = str(to_page)
        return f"/runs/{run.id}" + (f"?{urlencode(query)}" if query else "")

    return {
        "rows": rows,
        "status": status,
        "q": q,
        "page": found.page,
        "pages": found.pages,
        "matching": found.matching,
        "first": (found.page - 1) * found.per_page + 1,
        "last": (found.page - 1) * found.per_page + len(rows),
        "prev": link(found.page - 1) if found.page > 1 else None,
        "next": link(found.page + 1) if found.page < found.pages else None,
        "first_link": link(1) if found.page > 2 else None,
        "last_link": link(found.pages) if found.page < found.pages - 1 else None,
        "filters": STATUS_FILTERS,
    }


def _words() -> dict[str, Any]:
    return {
        "states": state_labels(),
        "statuses": status_labels(),
        "status_help": status_help(),
        "stages": stage_labels(),
        "status_order": STATUS_ORDER,
    }
