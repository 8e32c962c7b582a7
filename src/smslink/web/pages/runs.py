"""The marketer's run pages: the list of runs with their progress."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smslink.web.pages.common import executor, signed_in, smslink
from smslink.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/runs")
def list_page(request: Request) -> Response:
    user = signed_in(request)
    runs = smslink(request).runs.list(50)
    live = {d.run.id: executor(request).counters(d.run.id) for d in runs}
    return render(request, "runs/list.html", user, runs=runs, live=live)
