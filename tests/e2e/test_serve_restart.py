"""A run started from a page belongs to the service, not to the browser: it goes on when the
page is closed, and when the service dies mid-run (kill -9) the next `smslink serve` on the
same store resumes it by itself. Nobody gets the message twice, and every record ends with
exactly one result."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import requests

from tests.clikit import Simulator
from tests.e2e.conftest import Cli
from tests.e2e.test_serve_demo import _csrf, _wait_until_up
from tests.web.site import free_port

RECORDS = 300
PASSWORD = "correct horse battery"


def _audience() -> bytes:
    rows = ["name,phone"] + [f"Name{i},+1212{5550000 + i:07d}" for i in range(RECORDS)]
    return ("\r\n".join(rows) + "\r\n").encode()


def _serve(cli: Cli) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = cli.start("serve", "--port", str(port))
    _wait_until_up(url, service)
    return service, url


def _signed_in(url: str) -> requests.Session:
    s = requests.Session()
    answer = s.post(
        url + "/signin",
        data={"csrf": _csrf(s, url + "/signin"), "name": "ada", "password": PASSWORD},
        allow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return s


def test_a_run_survives_a_closed_browser_and_a_killed_service(
    cli: Cli, simulator: Simulator
) -> None:
    cli.env["SMSLINK_PASSWORD"] = PASSWORD
    cli.in_process.run("user", "add", "ada", "--role", "admin")
    # 40 segments a second: the run takes about 8 s, long enough to be cut in the middle.
    cli.add_touchpoint(simulator.base_url, "--max-segments-per-second", "40")

    first, url = _serve(cli)
    try:
        browser = _signed_in(url)
        uploaded = browser.post(
            url + "/runs/new",
            data={"csrf": _csrf(browser, url + "/runs/new"), "touchpoint": "hello"},
            files={"file": ("audience.csv", _audience(), "text/csv")},
            allow_redirects=False,
        )
        assert uploaded.status_code == 303, uploaded.text
        preview = uploaded.headers["location"]
        sent = browser.post(
            url + preview + "/send",
            data={"csrf": _csrf(browser, url + preview)},
            allow_redirects=False,
        )
        assert sent.status_code == 303, sent.text
        run_path = sent.headers["location"]
        browser.close()  # the page is closed: the run goes on in the service

        deadline = time.monotonic() + 30
        while simulator.stats()["posts"] < 60:
            assert time.monotonic() < deadline, simulator.stats()
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    cut_at = simulator.stats()["posts"]
    assert 0 < cut_at < RECORDS  # killed in the middle of sending

    second, url = _serve(cli)
    try:
        watcher = _signed_in(url)
        deadline = time.monotonic() + 60
        while (run := watcher.get(url + "/api" + run_path).json())["state"] != "completed":
            assert time.monotonic() < deadline, run
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=20)

    assert run["progress"]["final"] == RECORDS
    assert sum(run["progress"]["by_status"].values()) == RECORDS
    per_recipient = Counter(m["to"] for m in simulator.messages().values())
    assert len(per_recipient) == RECORDS and set(per_recipient.values()) == {1}
