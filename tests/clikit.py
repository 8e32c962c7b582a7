"""What the CLI tests share: the simulator handle, the two ways to run `smslink` (in this
process with Typer's CliRunner, or as a real process in tests/e2e), set-up commands and
audience files.

Every command gets the environment a user's shell would give it: this process's
environment without any SMSLINK_* / TWILIO_* variable, plus the test's own SMSLINK_HOME,
token and terminal width. Relative paths resolve in the test's own tmp_path, never in the
folder pytest was started from (parallel workers share that one).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from smslink.cli import app
from smslink.simulator import SimulatorConfig

ACCOUNT_SID = "AC" + "e2e00000000000000000000000000001"
TOKEN = "e2e-token"
FAST = SimulatorConfig(auth_token=TOKEN, queued_s=0.05, sending_s=0.05, sent_s=0.1)


@dataclass
class Simulator:
    base_url: str

    @property
    def root(self) -> str:
        return self.base_url.rsplit("/2010-04-01", 1)[0]

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.root}/_stats") as response:
            return json.load(response)

    def timeline(self) -> dict:
        """When each message was created and reached its status (GET /_timeline)."""
        with urllib.request.urlopen(f"{self.root}/_timeline") as response:
            return json.load(response)

    def messages(self) -> dict[str, dict]:
        """Every message the simulator created, by sid, with its status now."""
        with urllib.request.urlopen(f"{self.root}/_messages") as response:
            return {m["sid"]: m for m in json.load(response)["messages"]}


def command_env(home: Path) -> dict[str, str]:
    """The whole environment of one test's commands (see the module's docstring)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSLINK_", "TWILIO_"))}
    env.update({"SMSLINK_HOME": str(home), "TWILIO_AUTH_TOKEN": TOKEN, "COLUMNS": "200"})
    return env


class CliCommands:
    """Set-up commands every test needs, for any runner that has `run(*args)`."""

    def run(self, *args: str, check: bool = True) -> Any:
        raise NotImplementedError

    def add_touchpoint(self, base_url: str, *connection_options: str) -> None:
        """Connection `sim` and touchpoint `hello` ("Hi <Name>", phone from `phone`)."""
        self.add_connection("sim", base_url, *connection_options)
        self.run(
            "touchpoint",
            "add",
            "hello",
            "--connection",
            "sim",
            "--message",
            "Hi <Name>!",
            "--phone",
            "phone",
            "--map",
            "Name=name",
        )

    def add_connection(self, name: str, base_url: str, *extra: str) -> None:
        self.run(
            "connection",
            "add",
            name,
            "--account-sid",
            ACCOUNT_SID,
            "--from",
            "+15005550006",
            "--base-url",
            base_url,
            "--poll-interval-ms",
            "200",
            "--poll-attempts",
            "25",
            *extra,
        )


@dataclass
class Outcome:
    """What a command left: exit code and both streams, as a subprocess would."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class InProcessCli(CliCommands):
    """`smslink` run in this process: the same commands, options, output and exit codes as
    in a terminal, without starting a Python process per command.

    `env` is the command's whole environment, as for a subprocess: a variable deleted from
    it is unset while the command runs, whatever this process has."""

    home: Path
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str, check: bool = True, input: str | None = None) -> Outcome:
        env: dict[str, str | None] = {k: None for k in os.environ if k not in self.env}
        env.update(self.env)
        with contextlib.chdir(self.cwd):
            result = CliRunner().invoke(app, list(args), env=env, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        outcome = Outcome(result.exit_code, result.stdout, result.stderr)
        if check and outcome.returncode != 0:
            raise AssertionError(
                f"smslink {' '.join(args)} exited {outcome.returncode}\n"
                f"stdout:\n{outcome.stdout}\nstderr:\n{outcome.stderr}"
            )
        return outcome


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def audience(path: Path, count: int, *, start: int = 0) -> Path:
    """`count` distinct valid US mobile-format numbers with names."""
    rows = [
        [f"C{i:05d}", f"Name{i}", f"+1212555{i % 10000:04d}"] for i in range(start, start + count)
    ]
    return write_csv(path, ["id", "name", "phone"], rows)
