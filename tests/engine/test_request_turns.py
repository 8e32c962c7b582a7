"""A run's requests take turns in its account's window (engine/pacing.py, first come,
first served): its senders keep every request slot of the connection busy but one, and
its polls go out while they send, not only once sending has ended (README: tracking
never waits for sending). Real SQLite, the simulator over loopback, watched by a
middleware in front of its API."""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from smslink.domain.models import RunState
from smslink.engine import RunCounters, RunRequest, execute_run, start_run
from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.store import Store
from tests.engine.campaign import TOKEN, add_touchpoint, write_audience

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RequestWatch:
    """POSTs in progress (the simulator's latency included) and when each poll came."""

    posts: int = 0
    posts_in_progress: int = 0
    most_posts_in_progress: int = 0
    last_post_at: float = 0.0
    polls_at: list[float] = field(default_factory=list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path.startswith("/_"):  # the simulator's own test hooks
            return await handler(request)
        now = time.monotonic()
        if request.method != "POST":
            self.polls_at.append(now)
            return await handler(request)
        self.posts += 1
        self.last_post_at = now
        self.posts_in_progress += 1
        self.most_posts_in_progress = max(self.most_posts_in_progress, self.posts_in_progress)
        try:
            return await handler(request)
        finally:
            self.posts_in_progress -= 1


@pytest.mark.parametrize("concurrency", [1, 3])
def test_the_senders_fill_their_slots_and_polls_go_out_while_they_send(
    store: Store, tmp_path: Path, concurrency: int
) -> None:
    watch = RequestWatch()
    # Every answer takes 20 ms; a message is final 0.15 s after its create, so the run
    # has messages to poll long before its 30 rounds of sends are over (~0.6 s).
    quick = SimulatorConfig(
        auth_token=TOKEN, latency_ms=20, queued_s=0.05, sending_s=0.05, sent_s=0.05
    )
    records = 30 * concurrency

    def install(app: web.Application) -> None:
        app.middlewares.insert(0, watch.middleware)

    with run_in_thread(quick, extend=install) as url:
        add_touchpoint(store, base_url=url, poll_interval_ms=100, concurrency=concurrency)
        audience = write_audience(tmp_path / "a.csv", records)
        run_id = start_run(store, RunRequest("t", audience, tmp_path / "out.csv"))
        asyncio.run(execute_run(store, run_id, RunCounters()))

    # One slot is kept for polling, unless the connection allows a single request.
    assert watch.most_posts_in_progress == max(1, concurrency - 1)
    polls_while_sending = [at for at in watch.polls_at if at < watch.last_post_at]
    assert polls_while_sending  # tracking had its turns before the last send
    assert watch.posts == records  # each message sent once
    assert store.runs.get_run(run_id).state is RunState.COMPLETED
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as results:
        statuses = [row["status"] for row in csv.DictReader(results)]
    assert statuses == ["delivered"] * records
