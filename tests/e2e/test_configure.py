"""Connections and touchpoints as an administrator and a marketer set them up, over the CLI."""

from __future__ import annotations

import http.server
import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import ACCOUNT_SID, TOKEN, Cli, Simulator, write_csv


def test_connection_add_list_show_keep_the_token_secret(cli: Cli, simulator: Simulator) -> None:
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


def test_connection_test_succeeds_against_the_simulator(cli: Cli, simulator: Simulator) -> None:
    cli.add_connection("sim", simulator.base_url)

    result = cli.run("connection", "test", "sim")

    assert "OK" in result.stdout and ACCOUNT_SID in result.stdout and "active" in result.stdout
    assert simulator.stats()["account_gets"] == 1


def test_connection_test_reports_twilio_authentication_error(
    cli: Cli, simulator: Simulator
) -> None:
    cli.env["TWILIO_AUTH_TOKEN"] = "not-the-token"
    cli.add_connection("sim", simulator.base_url)

    result = cli.run("connection", "test", "sim", check=False)

    assert result.returncode == 1
    assert "20003" in result.stderr and "Authenticate" in result.stderr
    assert "not-the-token" not in result.stdout + result.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (f"http://127.0.0.1:{_closed_port()}/2010-04-01", "cannot connect to 127.0.0.1"),
        ("https://no-such-host.invalid/2010-04-01", "cannot resolve host no-such-host.invalid"),
    ],
    ids=["refused", "dns"],
)
def test_connection_test_names_the_network_problem(cli: Cli, base_url: str, expected: str) -> None:
    cli.add_connection("sim", base_url)

    result = cli.run("connection", "test", "sim", check=False)

    assert result.returncode == 1
    assert expected in " ".join(result.stderr.split())


def test_connection_test_reports_a_server_that_does_not_answer_in_time(cli: Cli) -> None:
    from smslink.simulator import SimulatorConfig, run_in_thread

    with run_in_thread(SimulatorConfig(auth_token=TOKEN, latency_ms=3000)) as base_url:
        cli.add_connection("sim", base_url)

        result = cli.run("connection", "test", "sim", "--timeout", "0.5", check=False)

    assert result.returncode == 1
    assert "no answer from 127.0.0.1 in time" in " ".join(result.stderr.split())


def test_connection_test_reports_tls_failure(cli: Cli, simulator: Simulator) -> None:
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
    cli: Cli, args: list[str], message: str
) -> None:
    result = cli.run("connection", "add", "bad", *args, check=False)

    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert "No connections" in cli.run("connection", "list").stdout


def test_connection_add_without_token_fails_instead_of_hanging(cli: Cli) -> None:
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


def test_connection_in_use_cannot_be_removed(cli: Cli, simulator: Simulator) -> None:
    cli.add_touchpoint(simulator.base_url)

    refused = cli.run("connection", "remove", "sim", check=False)
    cli.run("touchpoint", "remove", "hello")
    cli.run("connection", "remove", "sim")

    assert refused.returncode == 2 and "hello" in refused.stderr
    assert "No connections" in cli.run("connection", "list").stdout


@pytest.mark.parametrize(
    ("message", "maps", "error"),
    [
        ("<A> <B> <C> <D> <E> <F>", ["A=a", "B=b", "C=c", "D=d", "E=e", "F=f"], "at most 5"),
        ("Hi <FirstName>", [], "<FirstName> is not mapped"),
        ("Hi <FirstName>", ["FirstName=first", "City=city"], "City"),
    ],
    ids=["six-placeholders", "unmapped", "mapping-not-in-message"],
)
def test_touchpoint_add_rejects_template_problems(
    cli: Cli, simulator: Simulator, message: str, maps: list[str], error: str
) -> None:
    cli.add_connection("sim", simulator.base_url)
    map_args = [arg for pair in maps for arg in ("--map", pair)]

    result = cli.run(
        "touchpoint",
        "add",
        "t",
        "--connection",
        "sim",
        "--message",
        message,
        "--phone",
        "phone",
        *map_args,
        check=False,
    )

    assert result.returncode == 2
    assert error in " ".join(result.stderr.split())


def test_touchpoint_needs_an_existing_connection(cli: Cli) -> None:
    result = cli.run(
        "touchpoint",
        "add",
        "t",
        "--connection",
        "nope",
        "--message",
        "Hi",
        "--phone",
        "phone",
        check=False,
    )

    assert result.returncode == 2 and "nope" in result.stderr


def test_touchpoint_show_and_preview_without_sending(
    cli: Cli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_connection("sim", simulator.base_url)
    cli.run(
        "touchpoint",
        "add",
        "promo",
        "--connection",
        "sim",
        "--message",
        "Hi <First Name>, 3 < 4 and <3 stay: {curly} costs two",
        "--phone",
        "Mobile",
        "--map",
        "First Name=first",
    )
    source = write_csv(
        tmp_path / "a.csv",
        ["first", "Mobile"],
        [["Ann", "212 555 0101"], ["Zoë", "+12125550102"], ["", "+12125550103"], ["Bo", "123"]],
    )

    shown = cli.run("touchpoint", "show", "promo").stdout
    preview = cli.run("touchpoint", "preview", "promo", "--input", str(source), "--limit", "1")

    assert "<First Name>" in shown and "first" in shown and "Mobile" in shown
    out = " ".join(preview.stdout.split())
    assert "Hi Ann, 3 < 4 and <3 stay: {curly} costs two" in out
    assert "+12125550101" in out and "Zoë" not in out  # --limit 1
    assert "4 records: 2 messages, 2 segments (1 GSM-7, 1 UCS-2), 2 would fail" in out
    assert "record 3" in out and "record 4" in out
    assert simulator.stats()["posts"] == 0


def test_results_database_holds_no_plain_token(cli: Cli, simulator: Simulator) -> None:
    cli.add_connection("sim", simulator.base_url)
    with sqlite3.connect(cli.home / "smslink.db") as db:
        (stored,) = db.execute("select auth_token_encrypted from connections").fetchone()
    assert TOKEN not in stored and stored.startswith("gAAAA")  # a Fernet token


def test_a_base_url_that_is_not_twilio_is_named_in_one_line(cli: Cli, tmp_path: Path) -> None:
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
        thread.join(timeout=10)

    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "answered HTTP 200 with an HTML page that is not Twilio's API" in said
    assert "check the connection's base URL" in said and said.count("not Twilio's API") == 1
    assert "Traceback" not in result.stderr
