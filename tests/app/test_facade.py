"""The front door makes its services on first use, and a long-lived service makes them all
at once (cached_property takes no lock from Python 3.12 on, and the service answers from
many threads)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from smslink.app import Config, Smslink
from smslink.app.facade import _SERVICES


def test_every_service_is_made_when_the_service_opens(tmp_path: Path):
    services = {name for name, v in vars(Smslink).items() if isinstance(v, cached_property)}
    assert set(_SERVICES) == services  # a new service must be named there too
    app = Smslink.open(Config(database_url=f"sqlite:///{tmp_path / 'smslink.db'}"))
    try:
        assert services <= set(vars(app))  # made, not waiting for a first request
        assert app.runs is app.runs
    finally:
        app.close()
