"""What one request costs the service: CPU milliseconds of `smslink serve` per request.

Not a test. Starts `smslink serve` over a fresh store (one connection with a callback base
URL, an administrator and an API token), lets it settle, then sends `--n` requests of each
kind from this process (aiohttp, `--concurrency` in flight) and divides the service's CPU
time over them by their number. The client runs on the other core; the service is
otherwise idle, so what it spends is what the requests cost. Kinds:

* `static`: `GET /static/favicon.svg` (the web stack alone);
* `callback`: a Twilio status callback signed with the connection's auth token (by the
  official SDK's `RequestValidator`), each with its own `I-Twilio-Idempotency-Token`,
  moving a message being tracked from `queued` to `sent` (token, update and event
  written: what most of Twilio's callbacks do). The messages are written into the store
  before the service starts, as the sender would have left them;
* `events`: `GET /api/events?limit=1` with the bearer token (the JSON API and its auth).

    python bench/request_cost.py --n 3000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from journey_stream import cpu_of, wait_up
from send_throughput import AUTH_TOKEN, FROM_NUMBER, SMSLINK, account_sid, base_env, free_port

CONNECTION = "bench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="requests of each kind")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--kinds", default="static,callback,events")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every kind")
    return parser.parse_args()


def setup(env: dict[str, str], home: Path, service: str, messages: int) -> str:
    """The connection, an administrator and its token: the Authorization header value."""
    subprocess.run(
        [SMSLINK, "connection", "add", CONNECTION, "--account-sid", account_sid(),
         "--from", FROM_NUMBER, "--base-url", "http://127.0.0.1:9", "--callback-base-url",
         service],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [SMSLINK, "user", "add", "bench-admin", "--role", "admin"],
        env=env,
        check=True,
        capture_output=True,
    )
    os.environ["SMSLINK_HOME"] = str(home)
    from smslink.app import open_app

    with open_app() as app:
        [user] = [u for u in app.users.list() if u.name == "bench-admin"]
        _, token = app.users.create_token(user.id, "bench")
        tracked_messages(app, home, messages)
    return f"Bearer {token}"


def tracked_messages(app: Any, home: Path, n: int) -> None:
    """A run of `n` messages Twilio accepted (sids `sid_of(k)`), being tracked: written
    through the store as the sender writes them (a bench may reach inside the app)."""
    from smslink.domain.models import Delivery, Progress, Stage, Touchpoint
    from smslink.engine import RunRequest

    app.touchpoints.add(Touchpoint("bench", CONNECTION, "Hi", "phone", {}))
    audience = home / "one.csv"
    audience.write_text("phone\n+12125550100\n")
    run_id = app.runs.start(RunRequest("bench", audience, home / "out.csv"))
    store = app._store
    phone = "+12125550100"
    store.deliveries.add_deliveries(
        run_id, [Delivery(run_id, k, {"phone": phone}, phone, "Hi", 1) for k in range(n)], ["phone"]
    )
    store.deliveries.claim_pending(run_id, n, datetime.now(UTC))
    for first in range(0, n, 1000):
        store.deliveries.save_progress(
            [
                Progress(run_id, k, Stage.TRACKING, twilio_status="queued", message_sid=sid_of(k))
                for k in range(first, min(n, first + 1000))
            ]
        )


def sid_of(k: int) -> str:
    return f"SM{k:032x}"


def requests_of(kind: str, service: str, auth: str, n: int, round_: int) -> list[dict]:
    """Each request as aiohttp's arguments."""
    if kind == "static":
        return [{"method": "GET", "url": f"{service}/static/favicon.svg"}] * n
    if kind == "events":
        url = f"{service}/api/events?limit=1"
        return [{"method": "GET", "url": url, "headers": {"Authorization": auth}}] * n
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    url = f"{service}/twilio/status/{CONNECTION}"
    made = []
    for i in range(n):
        form = {
            "MessageSid": sid_of((round_ - 1) * n + i),
            "MessageStatus": "sent",
            "AccountSid": account_sid(),
            "From": FROM_NUMBER,
            "To": "+12125550100",
            "ApiVersion": "2010-04-01",
        }
        headers = {
            "X-Twilio-Signature": validator.compute_signature(url, form),
            "I-Twilio-Idempotency-Token": f"bench-{round_}-{i}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        made.append({"method": "POST", "url": url, "data": form, "headers": headers})
    return made


async def fire(requests: list[dict], concurrency: int) -> dict[int, int]:
    import aiohttp

    statuses: dict[int, int] = {}
    queue = list(reversed(requests))

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            spec = queue.pop()
            async with session.request(**spec) as answer:
                await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return statuses


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="request-cost-"))
    home = work / "home"
    env = base_env(home)
    env["SMSLINK_PASSWORD"] = "bench-password-long-enough"
    port = free_port()
    service = f"http://127.0.0.1:{port}"
    serve = None
    try:
        auth = setup(env, home, service, args.n * args.repeat)
        serve = subprocess.Popen(
            [SMSLINK, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(work / "serve.log").open("wb"),
        )
        wait_up(f"{service}/signin", serve)
        print(
            f"service CPU per request, {args.n:,} requests a kind, {args.concurrency} in flight; "
            f"nproc {os.cpu_count()}, python {sys.version.split()[0]}"
        )
        asyncio.run(fire(requests_of("static", service, auth, 200, 0), args.concurrency))
        for round_ in range(1, args.repeat + 1):
            for kind in args.kinds.split(","):
                batch = requests_of(kind, service, auth, args.n, round_)
                time.sleep(0.5)
                before, started = cpu_of(serve.pid), time.perf_counter()
                statuses = asyncio.run(fire(batch, args.concurrency))
                wall = time.perf_counter() - started
                time.sleep(0.3)  # writes still under way are the requests' too
                spent = cpu_of(serve.pid) - before
                print(
                    f"  {kind:<9} {1000 * spent / args.n:6.2f} ms CPU a request   "
                    f"{args.n / wall:7.0f} requests/s   answers {statuses}"
                )
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
