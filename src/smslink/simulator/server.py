"""Running the simulator: inside an event loop, in a background thread, or as a command.

Tests and the in-process demo need a real loopback HTTP server (the product under test only
ever reaches the simulator over HTTP), started on a free port and stopped cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Self

from aiohttp import web

from smslink.simulator.app import create_app
from smslink.simulator.config import DEFAULT_AUTH_TOKEN, SimulatorConfig
from smslink.simulator.resources import ROOT
from smslink.simulator.state import SimulatorState


class SimulatorServer:
    """The simulator listening on host:port (port 0 picks a free one) while in `async with`."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        state: SimulatorState | None = None,
        extend: Callable[[web.Application], None] | None = None,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.host = host
        self.port = port
        self.state = state or SimulatorState(self.config)
        #: Adds routes or middlewares before serving (a test's recorder, a callback sink).
        self._extend = extend
        self._runner: web.AppRunner | None = None

    @property
    def origin(self) -> str:
        """`http://host:port`: what the official SDK takes as `client.api.base_url`."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """`http://host:port/2010-04-01`: what a smslink connection takes as its base URL."""
        return self.origin + ROOT

    async def start(self) -> None:
        app = create_app(self.config, state=self.state)
        if self._extend is not None:
            self._extend(app)
        # No access log: at benchmark rates it would cost more than the requests themselves.
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0:
            self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class _ThreadedServer:
    """A SimulatorServer on its own event loop in a daemon thread."""

    def __init__(
        self,
        config: SimulatorConfig,
        host: str,
        port: int,
        extend: Callable[[web.Application], None] | None,
    ) -> None:
        self.server = SimulatorServer(config, host, port, extend=extend)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="twilio-simulator", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self.server.stop())
            self._loop.close()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@contextlib.contextmanager
def run_in_thread(
    config: SimulatorConfig | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    extend: Callable[[web.Application], None] | None = None,
) -> Iterator[str]:
    """Serve in a background thread for the duration of the block; yields the base URL.

    `extend` may add routes or middlewares to the app before it serves."""
    threaded = _ThreadedServer(config or SimulatorConfig(), host, port, extend)
    threaded.start()
    try:
        yield threaded.server.base_url
    finally:
        threaded.stop()


def main(
    port: int = 0,
    auth_token: str = DEFAULT_AUTH_TOKEN,
    host: str = "127.0.0.1",
    **config: Any,
) -> None:
    """Serve until Ctrl-C (the `smslink simulator` command). Keyword args are config fields."""
    settings = SimulatorConfig(auth_token=auth_token, **config)

    async def serve() -> None:
        async with SimulatorServer(settings, host, port) as server:
            print(f"Twilio simulator listening on {server.base_url}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
