"""The `smslink` command run in this process (Typer's CliRunner) against the simulator over
loopback HTTP: the same commands, options, output and exit codes as in a terminal, without
starting a Python process per command. Tests that need a real process (signals, kill -9,
a paused process, two processes racing, a terminal prompt) stay in tests/e2e."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smslink.simulator import run_in_thread
from tests.clikit import FAST, InProcessCli, Simulator, command_env


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with run_in_thread(FAST) as base_url:
        yield Simulator(base_url)


@pytest.fixture
def cli(tmp_path: Path) -> InProcessCli:
    home = tmp_path / "home"
    return InProcessCli(home, command_env(home), tmp_path)
