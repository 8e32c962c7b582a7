"""`smslink serve` refuses what would hand the service to a stranger: an address other
machines reach while nobody can sign in yet (whoever opened the page first would become
administrator)."""

from __future__ import annotations

import gc
import socket
import subprocess
import sys

from smslink.cli.collector import (
    PYTHON_THRESHOLDS,
    SENDING_YOUNG_THRESHOLD,
    collect_for_sending,
)
from tests.clikit import InProcessCli


def test_serving_beyond_loopback_without_a_user_is_refused_with_the_way_out(
    cli: InProcessCli,
) -> None:
    refused = cli.run("serve", "--host", "0.0.0.0", "--port", "8", check=False)

    assert refused.returncode == 2
    said = refused.stdout + refused.stderr
    assert "reachable from other machines" in said and "smslink user add" in said


def test_a_user_added_first_opens_the_way_beyond_loopback(cli: InProcessCli) -> None:
    cli.env["SMSLINK_PASSWORD"] = "correct horse battery"
    cli.run("user", "add", "ada", "--role", "admin")

    # The port is taken here, so the command gets past the check and stops at binding it.
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        attempt = cli.run("serve", "--host", "0.0.0.0", "--port", port, check=False)

    assert attempt.returncode != 0
    assert "reachable from other machines" not in attempt.stdout + attempt.stderr


def test_the_service_keeps_pythons_collector_where_sending_collects_less_often(
    cli: InProcessCli,
) -> None:
    """The `smslink` script collects young objects every 10,000 allocations (a send spent
    ~6% of its CPU collecting at Python's 700); a long-running service keeps Python's
    thresholds, so garbage cycles holding request bodies are freed as soon as before."""
    script = (
        "import gc, sys\n"
        "sys.argv = ['smslink', '--version']\n"
        "from smslink.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.get_threshold()[0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines()[-1] == str(SENDING_YOUNG_THRESHOLD)

    before = gc.get_threshold()
    try:
        collect_for_sending()
        cli.run("serve", "--host", "0.0.0.0", "--port", "8", check=False)  # refused at once
        assert gc.get_threshold() == PYTHON_THRESHOLDS
    finally:
        gc.set_threshold(*before)
