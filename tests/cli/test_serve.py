"""`smslink serve` refuses what would hand the service to a stranger: an address other
machines reach while nobody can sign in yet (whoever opened the page first would become
administrator)."""

from __future__ import annotations

import socket

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
