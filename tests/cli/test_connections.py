"""`smslink connection …` as an administrator sets Twilio up: add, list, show, update, test,
remove; the token kept secret; a rate cap and request timeout that make sense."""

from __future__ import annotations

import http.server
import socket
import sqlite3
import threading
from collections.abc import Iterator

import pytest

from smslink.simulator import SimulatorConfig, run_in_thread
from tests.clikit import ACCOUNT_SID, TOKEN, InProcessCli, Simulator


def test_connection_add_list_show_keep_the_token_secret(
    cli: InProcessCli, simulator: Simulator
) -> None:
    cli.add_connection("sim", simulator.base_url, "--region", "gb")

    listed = cli.run("connection", "list").stdout
    shown = cli.run("connection", "show", "sim").stdout

    assert "sim" in listed and ACCOUNT_SID in listed and "+15005550006" in listed
    assert "GB" in shown and "********" in shown
    assert TOKEN not in listed + shown
    database = (cli.home / "smslink.db").read_bytes()
    assert TOKEN.encode() not in database
    key = cli.home / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_connection_test_succeeds_against_the_simulator(
    cli: InProcessCli, simulator: Simulator
) -> None:
    cli.add_connection("sim", simulator.base_url)

    result = cli.run("connection", "test", "sim")

    assert "OK" in result.stdout and ACCOUNT_SID in result.stdout and "active" in result.stdout
    assert simulator.stats()["account_gets"] == 1


def test_connection_test_reports_twilio_authentication_error(
    cli: InProcessCli, simulator: Simulator
) -> None:
    cli.env["TWILIO_AUTH_TOKEN"] = "not-the-token"
    cli.add_connection("sim", simulator.base_url)

    result = cli.run("connection", "test", "sim", check=False)

    assert result.returncode == 1
    assert "20003" in result.stderr and "Authenticate" in result.stderr
    assert "not-the-token" not in result.stdout + result.stderr


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound, never listening, and held for the test, so
    that no server of a test running beside this one can take it meanwhile."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:{closed_port}/2010-04-01", "cannot connect to 127.0.0.1"),
        ("https://no-such-host.invalid/2010-04-01", "cannot resolve host no-such-host.invalid"),
    ],
    ids=["refused", "dns"],
)
def test_connection_test_names_the_network_problem(
    cli: InProcessCli, closed_port: int, base_url: str, expected: str
) -> None:
    cli.add_connection("sim", base_url.format(closed_port=closed_port))

    result = cli.run("connection", "test", "sim", check=False)

    assert result.returncode == 1
    assert expected in " ".join(result.stderr.split())


def test_connection_test_reports_a_server_that_does_not_answer_in_time(
    cli: InProcessCli,
) -> None:
    # The simulator holds every answer three times the test's timeout.
    with run_in_thread(SimulatorConfig(auth_token=TOKEN, latency_ms=1500)) as base_url:
        cli.add_connection("sim", base_url)

        result = cli.run("connection", "test", "sim", "--timeout", "0.5", check=False)

    assert result.returncode == 1
    assert "no answer from 127.0.0.1 in time" in " ".join(result.stderr.split())


def test_connection_test_reports_tls_failure(cli: InProcessCli, simulator: Simulator) -> None:
    https_to_plain_http = simulator.base_url.replace("http://", "https://")
    cli.add_connection("sim", https_to_plain_http)

    result = cli.run("connection", "test", "sim", check=False)

    assert result.returncode == 1
    assert "TLS" in result.stderr or "SSL" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account-sid", "AC123", "--from", "+15005550006"], "not an Account SID"),
        (["--account-sid", ACCOUNT_SID], "give a sender"),
        (["--account-sid", ACCOUNT_SID, "--from", "+1-500"], "not a sender Twilio accepts"),
        (["--account-sid", ACCOUNT_SID, "--from", "+15005550006", "--region", "UK"], "is GB"),
        (
            ["--account-sid", ACCOUNT_SID, "--from", "+15005550006", "--base-url", "ftp://x"],
            "must start with https://",
        ),
    ],
)
def test_connection_add_rejects_bad_settings_clearly(
    cli: InProcessCli, args: list[str], message: str
) -> None:
    result = cli.run("connection", "add", "bad", *args, check=False)

    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert "No connections" in cli.run("connection", "list").stdout


def test_connection_add_without_token_fails_instead_of_hanging(cli: InProcessCli) -> None:
    # No token in the environment and standard input not a terminal (as for a script or
    # CI job): the command must refuse, not wait at a prompt nobody can answer.
    del cli.env["TWILIO_AUTH_TOKEN"]

    result = cli.run(
        "connection",
        "add",
        "sim",
        "--account-sid",
        ACCOUNT_SID,
        "--from",
        "+15005550006",
        check=False,
    )

    assert result.returncode == 2 and "TWILIO_AUTH_TOKEN" in result.stderr


def test_connection_in_use_cannot_be_removed(cli: InProcessCli, simulator: Simulator) -> None:
    cli.add_touchpoint(simulator.base_url)

    refused = cli.run("connection", "remove", "sim", check=False)
    cli.run("touchpoint", "remove", "hello")
    cli.run("connection", "remove", "sim")

    assert refused.returncode == 2 and "hello" in refused.stderr
    assert "No connections" in cli.run("connection", "list").stdout


def test_results_database_holds_no_plain_token(cli: InProcessCli, simulator: Simulator) -> None:
    cli.add_connection("sim", simulator.base_url)
    with sqlite3.connect(cli.home / "smslink.db") as db:
        (stored,) = db.execute("select auth_token_encrypted from connections").fetchone()
    assert TOKEN not in stored and stored.startswith("gAAAA")  # a Fernet token


def test_a_base_url_that_is_not_twilio_is_named_in_one_line(cli: InProcessCli) -> None:
    class Portal(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # a captive portal / proxy page answering 200 HTML
            body = b"<html>Please log in</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cli.add_connection("sim", f"http://127.0.0.1:{server.server_port}/2010-04-01")
        result = cli.run("connection", "test", "sim", check=False)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "answered HTTP 200 with an HTML page that is not Twilio's API" in said
    assert "check the connection's base URL" in said and said.count("not Twilio's API") == 1
    assert "Traceback" not in result.stderr


# A connection's rate cap and request timeout.

BASE_URL = "http://127.0.0.1:9/2010-04-01"  # never contacted by these commands


def _fields(cli: InProcessCli, name: str) -> dict[str, str]:
    """`connection show` as label -> value."""
    shown: dict[str, str] = {}
    for line in cli.run("connection", "show", name).stdout.splitlines():
        label, _, value = line.partition("  ")
        shown[label.strip()] = value.strip()
    return shown


def test_defaults_are_no_cap_and_30_seconds(cli: InProcessCli) -> None:
    cli.add_connection("sim", BASE_URL)

    shown = _fields(cli, "sim")

    assert (shown["max segments/s"], shown["request timeout"]) == ("no cap", "30 s")
    listed = cli.run("connection", "list").stdout
    assert "segments/s" in listed and "30 s" in listed


def test_add_and_update_set_change_and_clear_them(cli: InProcessCli) -> None:
    cli.add_connection("sim", BASE_URL, "--mps", "1", "--request-timeout", "12.5")
    shown = _fields(cli, "sim")
    assert (shown["max segments/s"], shown["request timeout"]) == ("1", "12.5 s")

    cli.run("connection", "update", "sim", "--max-segments-per-second", "0.5")
    assert _fields(cli, "sim")["max segments/s"] == "0.5"
    assert _fields(cli, "sim")["request timeout"] == "12.5 s"  # untouched by that update

    cli.run("connection", "update", "sim", "--mps", "0", "--request-timeout", "45")
    shown = _fields(cli, "sim")
    assert (shown["max segments/s"], shown["request timeout"]) == ("no cap", "45 s")


#: Each bad value, and the part of the message that tells the user what to give instead.
_NONSENSE = [
    ("--mps", "-1", "--max-segments-per-second -1: give segments per second above 0"),
    ("--max-segments-per-second", "nan", "or 0 for no cap"),
    ("--request-timeout", "0", "--request-timeout 0: give a number of seconds above 0"),
    ("--request-timeout", "-3", "give a number of seconds above 0"),
    ("--request-timeout", "inf", "give a number of seconds above 0"),
]


@pytest.mark.parametrize(("option", "value", "expected"), _NONSENSE)
def test_values_that_make_no_sense_are_refused(
    cli: InProcessCli, option: str, value: str, expected: str
) -> None:
    cli.add_connection("sim", BASE_URL)

    added = cli.run(
        "connection", "add", "other", "--account-sid", "AC" + "0" * 32,
        "--from", "+15005550006", option, value, check=False,
    )  # fmt: skip
    updated = cli.run("connection", "update", "sim", option, value, check=False)

    for result in (added, updated):
        assert result.returncode == 2, (option, value)
        assert expected in " ".join(result.stderr.split()), (option, value)
    assert _fields(cli, "sim")["request timeout"] == "30 s"  # nothing was changed
    assert "other" not in cli.run("connection", "list").stdout


def test_a_callback_base_url_is_set_shown_with_the_url_twilio_gets_and_cleared(
    cli: InProcessCli, simulator: Simulator
) -> None:
    cli.add_connection("sim", simulator.base_url, "--callback-base-url", "https://sms.example.com/")

    shown = cli.run("connection", "show", "sim").stdout
    assert "https://sms.example.com" in shown
    assert "https://sms.example.com/twilio/status/sim#rc=5&rp=all" in shown

    cli.run("connection", "update", "sim", "--no-callbacks")
    assert "none (polling only)" in cli.run("connection", "show", "sim").stdout
    cli.run("connection", "update", "sim", "--callback-base-url", "https://hooks.example.org")
    assert "hooks.example.org/twilio/status/sim" in cli.run("connection", "show", "sim").stdout
    cli.run("connection", "update", "sim", "--callback-base-url", "")
    assert "none (polling only)" in cli.run("connection", "show", "sim").stdout


def test_a_callback_base_url_is_refused_by_its_flag_when_it_cannot_work(
    cli: InProcessCli, simulator: Simulator
) -> None:
    cli.add_connection("sim", simulator.base_url)

    plain = cli.run(
        "connection", "update", "sim", "--callback-base-url", "http://sms.example.com", check=False
    )
    assert plain.returncode == 2
    assert "--callback-base-url" in plain.stderr and "https://" in plain.stderr

    with_key = cli.run(
        "connection",
        "update",
        "sim",
        "--api-key-sid",
        "SK" + "1" * 32,
        "--callback-base-url",
        "https://sms.example.com",
        check=False,
    )
    assert with_key.returncode == 2 and "API key" in with_key.stderr
