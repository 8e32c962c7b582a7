"""A Twilio-compatible simulator: Twilio's 2010-04-01 Messaging API over real HTTP.

A separate peer of smslink, reached only over HTTP, so the product is tested exactly as it
talks to Twilio. Run it with `smslink simulator`, `run_in_thread` or `SimulatorServer`.

The names below are imported when first used (PEP 562): the command line reads
`SimulatorConfig`'s defaults for its help without loading the aiohttp server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smslink.lazy import lazy_names

if TYPE_CHECKING:
    from smslink.simulator.app import create_app
    from smslink.simulator.config import SimulatorConfig
    from smslink.simulator.server import SimulatorServer, main, run_in_thread
    from smslink.simulator.state import SimulatorState

__all__ = [
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorState",
    "create_app",
    "main",
    "run_in_thread",
]

#: Where each name above lives.
_HOMES = {
    "SimulatorConfig": "smslink.simulator.config",
    "SimulatorServer": "smslink.simulator.server",
    "SimulatorState": "smslink.simulator.state",
    "create_app": "smslink.simulator.app",
    "main": "smslink.simulator.server",
    "run_in_thread": "smslink.simulator.server",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES)
