"""The engine: sending and tracking a run, durably, at Twilio's pace.

Data flows one way (audience → prepare → send → track → results) with the store as the
single source of truth between the steps, so any step can crash and resume. The engine has
no face: it never prints, never reads the environment, and names no command-line flag;
what a user can do about a stop travels as a remedy (`smslink.domain.errors`). This
package's names are the engine's whole public surface; the application layer uses only
these.
"""

from smslink.engine.counters import RunCounters
from smslink.engine.errors import LeaseLost, RunHalted
from smslink.engine.lease import RunBusy
from smslink.engine.pacing import ConnectionPacing
from smslink.engine.prepare import Recipe
from smslink.engine.preview import PreviewTotals, dry_run, prepared, tally
from smslink.engine.results import UNFINISHED, ExportSummary, export_results
from smslink.engine.run import execute_run, request_stop
from smslink.engine.start import (
    InputError,
    RepeatedSend,
    RunRequest,
    recipe_for,
    redirect_results,
    start_run,
)
from smslink.engine.timings import Timings

__all__ = [
    "UNFINISHED",
    "ConnectionPacing",
    "ExportSummary",
    "InputError",
    "LeaseLost",
    "PreviewTotals",
    "Recipe",
    "RepeatedSend",
    "RunBusy",
    "RunCounters",
    "RunHalted",
    "RunRequest",
    "Timings",
    "dry_run",
    "execute_run",
    "export_results",
    "prepared",
    "recipe_for",
    "redirect_results",
    "request_stop",
    "start_run",
    "tally",
]
