"""End-to-end fixtures: the real `smslink` command against the simulator over loopback HTTP.

The commands a test is about run as their own process (`python -m smslink`), so these tests
see exactly what a user sees of a process: signals, kill -9, a paused process, two
processes at once, a terminal prompt, exit codes. Set-up commands around them (adding a
connection and touchpoint, resuming afterwards) run in this process through
`cli.in_process`, with the same SMSLINK_HOME and environment: starting Python for each of
them would only cost time. Everything that needs no real process is in tests/cli.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smslink.simulator import run_in_thread
from tests.clikit import FAST, InProcessCli, Simulator, command_env


@dataclass
class Cli:
    """`run` and `start` are real processes; `in_process` shares their home and env."""

    home: Path
    env: dict[str, str]
    cwd: Path
    in_process: InProcessCli = field(init=False)

    def __post_init__(self) -> None:
        self.in_process = InProcessCli(self.home, self.env, self.cwd)  # the same env dict

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "smslink", *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"smslink {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "smslink", *args],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    def add_touchpoint(self, base_url: str, *connection_options: str) -> None:
        """Connection `sim` and touchpoint `hello`, set up in this process."""
        self.in_process.add_touchpoint(base_url, *connection_options)

    def add_connection(self, name: str, base_url: str, *extra: str) -> None:
        self.in_process.add_connection(name, base_url, *extra)


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with run_in_thread(FAST) as base_url:
        yield Simulator(base_url)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    return Cli(home, command_env(home), tmp_path)
