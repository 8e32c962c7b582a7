"""`smslink send` and `smslink runs …`: results, statuses as Twilio recorded them, errors,
dry runs, runs that stop and are resumed."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import twilio.rest

from smslink.simulator import SimulatorConfig, run_in_thread
from tests.clikit import (
    ACCOUNT_SID,
    TOKEN,
    InProcessCli,
    Simulator,
    audience,
    read_csv,
    write_csv,
)

RESULT_COLUMNS = [
    "to",
    "status",
    "error_code",
    "error_message",
    "message_sid",
    "segments",
    "timestamp",
]


def _twilio_statuses(simulator: Simulator, sids: list[str]) -> dict[str, str]:
    """Each message's status as the simulator reports it to Twilio's own SDK."""
    client = twilio.rest.Client(ACCOUNT_SID, TOKEN)
    client.api.base_url = simulator.root
    return {sid: client.messages(sid).fetch().status for sid in sids}


def test_send_reports_one_row_per_record_in_order_matching_twilio(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = write_csv(
        tmp_path / "audience.csv",
        ["id", "name", "phone"],
        [
            ["1", "Ann", "(212) 555-0101"],
            ["2", "Bob", "+15005550001"],  # Twilio: invalid To (21211)
            ["3", "", "+12125550103"],  # empty placeholder value
            ["4", "Dan", "12345"],  # invalid phone
            ["5", "Eve", "+442079460123"],
            ["6", "Fay", "+15005550004"],  # Twilio: unsubscribed (21610)
        ],
    )
    out = tmp_path / "results.csv"

    result = cli.run("send", "hello", "--input", str(source), "--output", str(out))

    rows = read_csv(out)
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert list(rows[0].keys()) == ["id", "name", "phone", *RESULT_COLUMNS]
    by_id = {r["id"]: r for r in rows}
    assert by_id["1"]["to"] == "+12125550101"
    assert by_id["1"]["status"] == "delivered"
    assert by_id["5"]["status"] == "delivered"
    assert (by_id["2"]["status"], by_id["2"]["error_code"]) == ("error", "21211")
    assert (by_id["6"]["status"], by_id["6"]["error_code"]) == ("error", "21610")
    assert by_id["3"]["status"] == "error" and "'name' is empty" in by_id["3"]["error_message"]
    assert (
        by_id["4"]["status"] == "error"
        and "not a valid phone number" in by_id["4"]["error_message"]
    )
    sent = {r["message_sid"]: r["status"] for r in rows if r["message_sid"]}
    assert _twilio_statuses(simulator, list(sent)) == sent
    assert all(r["timestamp"].endswith("Z") for r in rows)
    stats = simulator.stats()
    assert max(stats["messages_by_to"].values()) == 1  # nobody got two messages
    assert "delivered" in result.stdout and "Results:" in result.stdout


def test_jsonl_in_and_out_with_a_clashing_status_column(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = tmp_path / "audience.jsonl"
    records = [
        {"name": "Ann", "phone": "+12125550101", "status": "vip"},
        {"name": "Bob", "phone": "+12125550102", "status": "new", "extra": 1},
    ]
    source.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"

    cli.run("send", "hello", "--input", str(source), "--output", str(out))

    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["status"] for r in rows] == ["vip", "new"]  # the input column is untouched
    assert [r["smslink_status"] for r in rows] == ["delivered", "delivered"]
    assert rows[1]["extra"] == "1"


def test_dry_run_sends_nothing_and_reports_what_would_fail(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = audience(tmp_path / "a.csv", 3)
    write_csv(source, ["id", "name", "phone"], [["1", "Ann", "+12125550101"], ["2", "Bob", "x"]])
    out = tmp_path / "dry.csv"

    result = cli.run("send", "hello", "--input", str(source), "--output", str(out), "--dry-run")

    assert [r["status"] for r in read_csv(out)] == ["ready", "error"]
    assert "1 would fail" in result.stdout and "record 2" in result.stdout
    assert simulator.stats()["posts"] == 0


def test_configuration_error_stops_the_run_once_and_resume_finishes_it(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    # +15005550007 is not the account's number: Twilio answers 21606 to every send.
    cli.add_touchpoint(simulator.base_url, "--from", "+15005550007", "--concurrency", "4")
    source = audience(tmp_path / "a.csv", 50)
    out = tmp_path / "out.csv"

    stopped = cli.run("send", "hello", "--input", str(source), "--output", str(out), check=False)

    assert stopped.returncode == 1
    assert "21606" in stopped.stderr and "smslink runs resume 1" in stopped.stderr
    assert stopped.stderr.count("error:") == 1
    assert not out.exists()
    assert simulator.stats()["posts"] <= 4  # only what was in flight when the first answer came
    assert "stopped" in cli.run("runs", "show", "1").stdout

    cli.run("connection", "update", "sim", "--from", "+15005550006")
    cli.run("runs", "resume", "1")

    rows = read_csv(out)
    assert len(rows) == 50 and {r["status"] for r in rows} == {"delivered"}
    assert max(simulator.stats()["messages_by_to"].values()) == 1


def test_missing_column_and_bad_encoding_are_input_errors(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    wrong = write_csv(tmp_path / "wrong.csv", ["id", "mobile"], [["1", "+12125550101"]])
    result = cli.run(
        "send", "hello", "--input", str(wrong), "--output", str(tmp_path / "o.csv"), check=False
    )
    assert result.returncode == 2
    assert "no column 'phone'" in result.stderr and "mobile" in result.stderr

    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,name,phone\n1,Jürgen,+12125550101\n".encode("cp1252"))
    result = cli.run(
        "send", "hello", "--input", str(latin), "--output", str(tmp_path / "o.csv"), check=False
    )
    assert result.returncode == 2 and "--encoding" in result.stderr

    cli.run(
        "send",
        "hello",
        "--input",
        str(latin),
        "--output",
        str(tmp_path / "o.csv"),
        "--encoding",
        "cp1252",
    )
    assert read_csv(tmp_path / "o.csv")[0]["name"] == "Jürgen"
    assert simulator.stats()["posts"] == 1


def test_polling_runs_out_as_sent_and_uses_the_list_endpoint(
    cli: InProcessCli, tmp_path: Path
) -> None:
    stuck = SimulatorConfig(
        auth_token=TOKEN, queued_s=0.01, sending_s=0.01, sent_s=0.01, stuck_share=1.0
    )
    with run_in_thread(stuck) as base_url:
        simulator = Simulator(base_url)
        cli.add_touchpoint(base_url, "--poll-attempts", "3")
        out = tmp_path / "out.csv"
        cli.run(
            "send", "hello", "--input", str(audience(tmp_path / "a.csv", 300)), "--output", str(out)
        )
        stats = simulator.stats()

    rows = read_csv(out)
    assert {r["status"] for r in rows} == {"sent"}
    # 3 polls of 300 messages: a page of the list each round, not 900 single fetches. (On
    # a busy machine a round may find only a straggler due, and fetching that one is right.)
    assert stats["lists"] >= 1
    assert stats["fetches"] + stats["lists"] <= 30


def test_a_malformed_record_gets_its_own_error_and_the_rest_go_out(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = tmp_path / "a.csv"
    source.write_text(
        "id,name,phone\n1,Ann,+12125550101\n2,Smith, Bob,+12125550102\n3,Cy,+12125550103\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"

    cli.run("send", "hello", "--input", str(source), "--output", str(out))

    rows = read_csv(out)
    assert [r["status"] for r in rows] == ["delivered", "error", "delivered"]
    assert "record 2 (line 3) has 4 fields" in rows[1]["error_message"]
    assert simulator.stats()["posts"] == 2


def test_an_unusable_output_path_is_refused_before_anything_is_sent(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = audience(tmp_path / "a.csv", 3)

    missing = cli.run("send", "hello", "--input", str(source), "--output",
                      str(tmp_path / "nope" / "out.csv"), check=False)  # fmt: skip
    xlsx = cli.run("send", "hello", "--input", str(source), "--output",
                   str(tmp_path / "out.xlsx"), check=False)  # fmt: skip

    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert xlsx.returncode == 2 and ".csv, .tsv or .jsonl" in xlsx.stderr
    assert simulator.stats()["posts"] == 0
    assert "No runs yet" in cli.run("runs", "list").stdout


def test_results_that_cannot_be_written_stop_the_run_and_resume_writes_them(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    folder = tmp_path / "results"
    folder.mkdir()
    out = folder / "out.csv"
    send_returned = threading.Event()
    problems: list[str] = []

    def move_the_folder_once_all_are_sent() -> None:
        deadline = time.monotonic() + 30
        while simulator.stats()["posts"] < 20:  # all sent (tracking takes a while yet) ...
            if send_returned.is_set() or time.monotonic() > deadline:
                problems.append(f"the send ended before all were posted: {simulator.stats()}")
                return
            time.sleep(0.01)
        if send_returned.is_set():
            problems.append("the send ended before the folder could be moved")
            return
        folder.rename(tmp_path / "moved")  # ... so take the results folder away meanwhile

    mover = threading.Thread(target=move_the_folder_once_all_are_sent)
    mover.start()
    try:
        stopped = cli.run("send", "hello", "--input", str(audience(tmp_path / "a.csv", 20)),
                          "--output", str(out), check=False)  # fmt: skip
    finally:
        send_returned.set()
        mover.join(timeout=60)
    assert not problems, problems

    assert stopped.returncode == 1
    assert "results file could not be written" in stopped.stderr
    assert "runs resume 1" in stopped.stderr

    folder.mkdir()
    cli.run("runs", "resume", "1")

    assert [r["status"] for r in read_csv(out)] == ["delivered"] * 20
    assert simulator.stats()["posts"] == 20


def test_resume_of_a_completed_run_does_nothing(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    cli.run(
        "send",
        "hello",
        "--input",
        str(audience(tmp_path / "a.csv", 5)),
        "--output",
        str(tmp_path / "out.csv"),
    )

    result = cli.run("runs", "resume", "1")

    assert "already complete" in result.stdout
    assert simulator.stats()["posts"] == 5
