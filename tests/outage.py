"""A simulator behind a switchable "proxy" that answers every API request with a page that is
not Twilio's (an HTML 502 from a load balancer, a 404 from another server), as happens when
a base URL points at the wrong host or something in front of Twilio fails."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web

from smslink.simulator import SimulatorConfig, run_in_thread

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HTML_PAGE = (
    "<html><head><title>{status} Bad Gateway</title></head>"
    "<body><h1>{status}</h1><p>nginx</p></body></html>"
)


@dataclass
class Outage:
    """What the proxy answers instead of Twilio while `status` is set; None passes through."""

    base_url: str = ""
    status: int | None = None
    body: str = HTML_PAGE
    content_type: str = "text/html"
    #: Only requests of this method are answered with the page (None: every method).
    method: str | None = None
    #: How many more pages to serve before passing requests through again (None: no end).
    limit: int | None = None
    answered: dict[str, int] = field(default_factory=dict)  # pages served, by method

    @property
    def root(self) -> str:
        return self.base_url.rsplit("/2010-04-01", 1)[0]

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        outside_api = request.path.startswith("/_")
        if self.status is None or outside_api or self.method not in (None, request.method):
            return await handler(request)
        if self.limit is not None:
            if self.limit <= 0:
                return await handler(request)
            self.limit -= 1
        self.answered[request.method] = self.answered.get(request.method, 0) + 1
        return web.Response(
            status=self.status,
            text=self.body.format(status=self.status),
            content_type=self.content_type,
        )


@contextmanager
def simulator_behind_proxy(config: SimulatorConfig) -> Iterator[Outage]:
    """The simulator with the switchable proxy page in front of its whole API."""
    outage = Outage()

    def install(app: web.Application) -> None:
        app.middlewares.insert(0, outage.middleware)

    with run_in_thread(config, extend=install) as base_url:
        outage.base_url = base_url
        yield outage
