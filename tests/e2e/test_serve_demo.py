"""`make serve` as a newcomer meets it: `smslink serve --demo` in its own process on a fresh
home, the first visit makes the administrator, the demo connection passes its Test, the
sample audience downloads from the new-run page and goes out as a run that completes;
Ctrl-C (SIGINT) ends the service and the simulator with it."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import requests

from tests.e2e.conftest import Cli
from tests.web.site import free_port

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _csrf(s: requests.Session, url: str) -> str:
    found = _CSRF.search(s.get(url).text)
    assert found, f"no CSRF token on {url}"
    return found.group(1)


def _wait_until_up(url: str, service: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert service.poll() is None, service.communicate()
        try:
            requests.get(url + "/signin", timeout=1)
            return
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)


def test_a_fresh_home_serves_a_site_ready_to_click_through(cli: Cli) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = cli.start("serve", "--demo", "--port", str(port))
    try:
        _wait_until_up(url, service)
        s = requests.Session()

        first = s.get(url + "/", allow_redirects=True)
        assert first.url.endswith("/setup")  # nobody yet: the first visitor sets up
        made = s.post(
            url + "/setup",
            data={
                "csrf": _csrf(s, url + "/setup"),
                "name": "newcomer",
                "password": "a long enough passphrase",
                "password_again": "a long enough passphrase",
            },
            allow_redirects=False,
        )
        assert made.status_code == 303 and made.headers["location"] == "/connections"

        tested = s.post(
            url + "/connections/demo/test",
            data={"csrf": _csrf(s, url + "/connections/demo")},
        )
        assert tested.status_code == 200 and "is active" in tested.text

        new_run = s.get(url + "/runs/new").text
        assert 'href="/runs/sample-audience.csv"' in new_run and 'value="demo"' in new_run
        sample = s.get(url + "/runs/sample-audience.csv")
        assert sample.status_code == 200 and sample.text.startswith("CustomerId,FirstName")
        uploaded = s.post(
            url + "/runs/new",
            data={"csrf": _csrf(s, url + "/runs/new"), "touchpoint": "demo", "encoding": ""},
            files={"file": ("sample-audience.csv", sample.content, "text/csv")},
            allow_redirects=False,
        )
        assert uploaded.status_code == 303, uploaded.text
        preview = uploaded.headers["location"]
        sent = s.post(
            url + preview + "/send",
            data={"csrf": _csrf(s, url + preview)},
            allow_redirects=False,
        )
        assert sent.status_code == 303, sent.text
        run_api = url + "/api" + sent.headers["location"]

        deadline = time.monotonic() + 60
        while (run := s.get(run_api).json())["state"] != "completed":
            assert time.monotonic() < deadline, run
            time.sleep(0.2)
        assert run["progress"]["final"] == run["progress"]["records"] == 40
        by_status = run["progress"]["by_status"]
        assert sum(by_status.values()) == 40 and by_status["delivered"] > 0
    finally:
        service.send_signal(signal.SIGINT)
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
            raise
    assert service.returncode in (0, 130, -signal.SIGINT)
