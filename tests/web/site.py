"""The service as a user's browser or script meets it: `smslink serve`'s application on
uvicorn in a thread, on a free loopback port, over its own store and the simulator."""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
import uvicorn

from smslink.app import Config, WebhookTimings, open_app
from smslink.domain.models import Role
from smslink.engine import Timings
from smslink.web.app import ServeOptions, create_app

ADMIN = ("ada", "correct horse battery")
MARKETER = ("max", "staple battery horse")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
#: Where the browser tests leave their screenshots: docs/screenshots/ when asked for
#: (`make screenshots`), else a scratch folder, so that a test run leaves the tree as it was.
SHOTS = (
    Path(__file__).parents[2] / "docs" / "screenshots"
    if os.environ.get("SMSLINK_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "smslink-screenshots"
)
SHOTS.mkdir(parents=True, exist_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    """A running service: its base URL, and a browser-like session per user."""

    url: str
    home: Path
    sessions: list[requests.Session] = field(default_factory=list)

    def session(self) -> requests.Session:
        """A fresh cookie jar, as a new browser would have."""
        s = requests.Session()
        self.sessions.append(s)
        return s

    def csrf(self, s: requests.Session, path: str = "/signin") -> str:
        """The CSRF token a page of `path` carries for this session."""
        found = _CSRF.search(s.get(self.url + path).text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def signed_in(self, who: tuple[str, str] = ADMIN) -> requests.Session:
        """A session signed in as `who`."""
        s = self.session()
        token = self.csrf(s)
        answer = s.post(
            self.url + "/signin",
            data={"csrf": token, "name": who[0], "password": who[1], "next": "/runs"},
            allow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        return s

    def post(
        self, s: requests.Session, path: str, data: dict[str, str], page: str
    ) -> requests.Response:
        """A form posted as the page `page` would post it (with its CSRF token)."""
        return s.post(
            self.url + path, data={"csrf": self.csrf(s, page), **data}, allow_redirects=False
        )


@contextmanager
def running_site(
    home: Path,
    *,
    users: bool = True,
    timings: Timings | None = None,
    webhook_timings: WebhookTimings | None = None,
) -> Iterator[Site]:
    """The service over a fresh store in `home` (SMSLINK_HOME must point there), with an
    administrator and a marketer unless `users` is False."""
    config = Config(
        database_url=f"sqlite:///{home / 'smslink.db'}",
        timings=timings or Timings(),
        webhook_timings=webhook_timings or WebhookTimings(),
    )
    if users:
        with open_app(config) as smslink:
            smslink.users.add(*ADMIN, Role.ADMIN)
            smslink.users.add(*MARKETER, Role.MARKETER)
    app = create_app(ServeOptions(config=config))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="smslink-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the service did not start"
        time.sleep(0.02)
    site = Site(f"http://127.0.0.1:{port}", home)
    try:
        yield site
    finally:
        for s in site.sessions:
            s.close()
        server.should_exit = True
        thread.join(timeout=20)
