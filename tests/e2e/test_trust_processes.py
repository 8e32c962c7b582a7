"""Trust rules that need real processes: two sends started at the same instant, and a token
typed at a real terminal prompt."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.clikit import ACCOUNT_SID, Simulator, audience
from tests.e2e.conftest import Cli


def test_two_sends_of_the_same_audience_at_once_send_each_recipient_one_message(
    cli: Cli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = audience(tmp_path / "a.csv", 50)
    processes = [
        cli.start("send", "hello", "--input", str(source), "--output", str(tmp_path / f"{n}.csv"))
        for n in (1, 2)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in processes]
    for process in processes:
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()

    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    refused = next(err for code, err in outcomes if code == 2)
    assert "already sent to an audience with exactly this content" in refused
    stats = simulator.stats()
    assert stats["posts"] == 50 and max(stats["messages_by_to"].values()) == 1


def test_an_empty_token_at_the_prompt_is_refused_with_a_reason(
    cli: Cli, simulator: Simulator
) -> None:
    env = {k: v for k, v in cli.env.items() if k != "TWILIO_AUTH_TOKEN"}
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "smslink", "connection", "add", "c"]
    command += ["--account-sid", ACCOUNT_SID, "--from", "+15005550006"]
    command += ["--base-url", simulator.base_url]
    process = subprocess.Popen(
        command,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=cli.cwd,
        close_fds=True,
    )
    os.close(follower)
    seen = _read_until(leader, b"auth token")
    _wait_for_hidden_input(leader)  # typed earlier, the key would be flushed, not read
    os.write(leader, b"\r")  # Enter, nothing typed
    seen += _read_until(leader, b"\n", timeout=10)
    process.wait(timeout=20)
    seen += _drain(leader)
    os.close(leader)

    assert process.returncode == 2, seen
    assert b"the auth token is empty" in seen
    assert seen.count(b"Twilio auth token") == 1  # asked once, not again and again


def _wait_for_hidden_input(fd: int, timeout: float = 20) -> None:
    """Until the prompt has turned echo off: it flushes whatever was typed before that."""
    deadline = time.monotonic() + timeout
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        assert time.monotonic() < deadline, "the prompt never hid its input"
        time.sleep(0.01)


def _read_until(fd: int, wanted: bytes, timeout: float = 20) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def _drain(fd: int) -> bytes:
    seen = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            return seen
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            return seen
        if not chunk:
            return seen
        seen += chunk
