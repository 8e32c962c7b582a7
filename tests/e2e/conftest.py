"""End-to-end fixtures: the real `smslink` command against the simulator over loopback HTTP.

Every command runs as its own process (`python -m smslink`) with its own SMSLINK_HOME, so
these tests see exactly what a user sees: exit codes, stdout/stderr, files, the database.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smslink.simulator import SimulatorConfig, run_in_thread

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
class Cli(CliCommands):
    home: Path
    env: dict[str, str]

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "smslink", *args],
            env=self.env,
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
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with run_in_thread(FAST) as base_url:
        yield Simulator(base_url)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSLINK_", "TWILIO_"))}
    env.update({"SMSLINK_HOME": str(home), "TWILIO_AUTH_TOKEN": TOKEN, "COLUMNS": "200"})
    return Cli(home, env)


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
