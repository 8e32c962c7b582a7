"""Running the simulator: SimulatorServer in a loop, run_in_thread, /_stats and /_reset."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import aiohttp
import pytest
from simkit import ACCOUNT_SID, FROM, TOKEN, Sim

from smslink.simulator import SimulatorConfig, SimulatorServer, run_in_thread


def test_server_picks_a_free_port_and_exposes_its_state() -> None:
    async def scenario() -> None:
        async with SimulatorServer(SimulatorConfig()) as server:
            assert server.port > 0
            assert server.base_url == f"http://127.0.0.1:{server.port}/2010-04-01"
            auth = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, TOKEN)}
            url = f"{server.base_url}/Accounts/{ACCOUNT_SID}/Messages.json"
            async with aiohttp.ClientSession(headers=auth) as session:
                form = {"To": "+14155550100", "From": FROM, "Body": "x"}
                async with session.post(url, data=form) as response:
                    assert response.status == 201
                    sid = (await response.json())["sid"]
            assert list(server.state.messages) == [sid]

    asyncio.run(scenario())


def test_run_in_thread_stops_and_frees_its_port() -> None:
    with run_in_thread(SimulatorConfig()) as base_url:
        port = int(base_url.split(":")[2].split("/")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats") as response:
            assert response.status == 200
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass


def test_stats_count_posts_per_recipient_and_gets_by_kind(sim: Sim) -> None:
    client = sim.client()
    sid = client.messages.create(to="+14155550100", from_=FROM, body="x").sid
    client.messages.create(to="+14155550100", from_=FROM, body="x")
    with pytest.raises(Exception, match="unsubscribed"):
        client.messages.create(to="+15005550004", from_=FROM, body="x")
    client.messages(sid).fetch()
    client.messages.list()
    client.api.accounts(ACCOUNT_SID).fetch()
    assert sim.stats() == {
        "posts": 3,
        "gets": 3,
        "fetches": 1,
        "lists": 1,
        "account_gets": 1,
        "posts_by_to": {"+14155550100": 2, "+15005550004": 1},
        "messages_by_to": {"+14155550100": 2},
        "messages": 2,
        "throttled": 0,
        "server_errors": 0,
        "resets_before": 0,
        "resets_after": 0,
        "delayed": 0,
        "peak_concurrency": 1,
        "queue_full": 0,
        "callbacks_sent": 0,
        "callbacks_failed": 0,
        "callbacks_retried": 0,
        "callbacks_dropped": 0,
    }


def test_reset_forgets_messages_and_counters(sim: Sim) -> None:
    sid = sim.send("+14155550100")["sid"]
    assert sim.http("POST", "/_reset", {}, auth=None)[0] == 200
    assert sim.stats()["messages"] == sim.stats()["posts"] == 0
    status, _ = sim.http("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json")
    assert status == 404


def test_test_hooks_need_no_auth_but_twilio_paths_do(sim: Sim) -> None:
    assert sim.http("GET", "/_stats", auth=None)[0] == 200
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{sim.base_url}/Accounts/{ACCOUNT_SID}.json")
    with caught.value as error:
        assert error.code == 401


def test_run_in_thread_reports_a_port_in_use() -> None:
    with run_in_thread(SimulatorConfig()) as base_url:
        port = int(base_url.split(":")[2].split("/")[0])
        with pytest.raises(OSError), run_in_thread(SimulatorConfig(), port=port):
            pass


def test_main_prints_its_base_url_and_stops_on_ctrl_c() -> None:
    code = "from smslink.simulator import main; main(port=0, auth_token='t', sent_s=1)"
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            line = process.stdout.readline() if process.stdout else ""
            assert line.startswith("Twilio simulator listening on http://127.0.0.1:")
            assert line.rstrip().endswith("/2010-04-01")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
