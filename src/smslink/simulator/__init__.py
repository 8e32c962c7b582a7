"""A Twilio-compatible simulator: Twilio's 2010-04-01 Messaging API over real HTTP.

A separate peer of smslink, reached only over HTTP, so the product is tested exactly as it
talks to Twilio. Run it with `smslink simulator`, `run_in_thread` or `SimulatorServer`.
"""

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
