"""The `smslink` command run in this process (Typer's CliRunner) against the simulator over
loopback HTTP: the same commands, options, output and exit codes as in a terminal, without
starting a Python process per command. Tests that need a real process (signals, kill -9,
a terminal) stay in tests/e2e."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smslink.cli import app
from smslink.simulator import SimulatorConfig, run_in_thread
from tests.e2e.conftest import TOKEN, CliCommands, Simulator

FAST = SimulatorConfig(auth_token=TOKEN, queued_s=0.05, sending_s=0.05, sent_s=0.1)


@dataclass
class Outcome:
    """What a command left: exit code and both streams, as a subprocess would."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class InProcessCli(CliCommands):
    home: Path
    env: dict[str, str | None]

    def run(self, *args: str, check: bool = True, input: str | None = None) -> Outcome:
        result = CliRunner().invoke(app, list(args), env=self.env, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        outcome = Outcome(result.exit_code, result.stdout, result.stderr)
        if check and outcome.returncode != 0:
            raise AssertionError(
                f"smslink {' '.join(args)} exited {outcome.returncode}\n"
                f"stdout:\n{outcome.stdout}\nstderr:\n{outcome.stderr}"
            )
        return outcome


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with run_in_thread(FAST) as base_url:
        yield Simulator(base_url)


@pytest.fixture
def cli(tmp_path: Path) -> InProcessCli:
    home = tmp_path / "home"
    env: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("SMSLINK_", "TWILIO_"))
    }
    env.update({"SMSLINK_HOME": str(home), "TWILIO_AUTH_TOKEN": TOKEN, "COLUMNS": "200"})
    return InProcessCli(home, env)
