"""The run pages over real HTTP against the simulator: a new run (upload in any format the
command line reads, preview, send), the run finishing, downloads compared with the store,
stop and resume, sending again to those who did not get it, repeated sends, uploads that
are refused, and who may do it. The helpers here are shared by the API and browser tests."""

from __future__ import annotations

import csv
import io
import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from smslink.app import Config, open_app
from smslink.domain.models import Connection, RunState, Touchpoint
from smslink.simulator import SimulatorConfig, run_in_thread
from tests.web.conftest import TOKEN
from tests.web.site import ADMIN, MARKETER, Site

SID = "AC" + "d1" * 16
MESSAGE = "Hi <Name>, your order ships today."
DASH = "\N{EN DASH}"


# -- helpers shared with test_api_runs.py and test_browser_runs.py ----------------------------


def configure(
    site: Site, simulator: str, *, touchpoint: str = "spring", **connection: object
) -> None:
    """A connection to the simulator and a touchpoint `touchpoint` on it, in the site's store."""
    settings: dict[str, object] = {
        "name": "sim",
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
        "base_url": simulator,
        "poll_interval_ms": 100,
        "poll_attempts": 20,
        "concurrency": 20,
    }
    settings.update(connection)
    with open_app(_config(site)) as app:
        app.connections.add(Connection(**settings))  # type: ignore[arg-type]
        app.touchpoints.add(Touchpoint(touchpoint, "sim", MESSAGE, "phone", {"Name": "name"}))


def _config(site: Site) -> Config:
    return Config(database_url=f"sqlite:///{site.home / 'smslink.db'}")


def phone(i: int) -> str:
    """A distinct valid US number per record (never one of Twilio's magic test numbers)."""
    return f"+1212{5550000 + i:07d}"


def audience(
    n: int, *, bad: Callable[[int], str | None] = lambda i: None, delimiter: str = ","
) -> str:
    """`n` records (name, phone, city); `bad(i)` replaces record i's phone when it says so."""
    rows = [delimiter.join(["name", "phone", "city"])]
    for i in range(n):
        given = bad(i)
        rows.append(delimiter.join([f"Name{i}", phone(i) if given is None else given, "Berlin"]))
    return "\r\n".join(rows) + "\r\n"


def upload(
    site: Site,
    s: requests.Session,
    content: bytes | str,
    *,
    filename: str = "audience.csv",
    touchpoint: str = "spring",
    encoding: str = "",
) -> requests.Response:
    """The new-run form posted with a file, as the browser posts it."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return s.post(
        site.url + "/runs/new",
        data={"csrf": site.csrf(s, "/runs/new"), "touchpoint": touchpoint, "encoding": encoding},
        files={"file": (filename, data, "text/csv")},
        allow_redirects=False,
    )


def send(
    site: Site, s: requests.Session, preview_path: str, *, again: bool = False
) -> requests.Response:
    data = {"again": "1"} if again else {}
    return site.post(s, preview_path + "/send", data, preview_path)


def start(site: Site, s: requests.Session, content: str, **kwargs: Any) -> int:
    """Upload, preview and send; the new run's id."""
    uploaded = upload(site, s, content, **kwargs)
    assert uploaded.status_code == 303, uploaded.text
    sent = send(site, s, uploaded.headers["location"])
    assert sent.status_code == 303, sent.text
    return int(sent.headers["location"].rsplit("/", 1)[1])


def run_json(site: Site, s: requests.Session, run_id: int) -> dict[str, Any]:
    answer = s.get(f"{site.url}/api/runs/{run_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def wait_for_state(
    site: Site, s: requests.Session, run_id: int, *states: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = run_json(site, s, run_id)
        if run["state"] in states and not run["progress"]["active"]:
            return run
        assert time.monotonic() < deadline, f"run {run_id} is still {run['state']}: {run}"
        time.sleep(0.1)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def stats(simulator: str) -> dict[str, Any]:
    root = simulator.rsplit("/2010-04-01", 1)[0]
    with urllib.request.urlopen(f"{root}/_stats") as answer:
        return dict(json.load(answer))


def store_statuses(site: Site, run_id: int) -> dict[int, str]:
    """Every record's status as the store has it, by record number."""
    with open_app(_config(site)) as app:
        found = app.runs.deliveries(run_id, per_page=500)
        rows = list(found.deliveries)
        for page in range(2, found.pages + 1):
            rows += app.runs.deliveries(run_id, page=page, per_page=500).deliveries
    return {d.seq + 1: str(d.status) for d in rows}


@contextmanager
def simulator_with(**config: Any) -> Iterator[str]:
    settings: dict[str, Any] = {
        "auth_token": TOKEN,
        "queued_s": 0.05,
        "sending_s": 0.05,
        "sent_s": 0.1,
    }
    settings.update(config)
    with run_in_thread(SimulatorConfig(**settings)) as base_url:
        yield base_url


# -- a new run -------------------------------------------------------------------------------


def test_the_new_run_page_says_what_to_do_without_a_touchpoint(site: Site) -> None:
    s = site.signed_in(MARKETER)

    page = s.get(site.url + "/runs/new").text

    assert "No touchpoint yet" in page and 'href="/touchpoints/new"' in page
    runs = s.get(site.url + "/runs").text
    assert "No run yet" in runs and 'href="/runs/new"' in runs


def test_a_marketer_uploads_previews_and_sends_and_the_run_finishes(
    site: Site, simulator: str
) -> None:
    configure(site, simulator)
    s = site.signed_in(MARKETER)
    assert 'value="spring"' in s.get(site.url + "/runs/new?touchpoint=spring").text

    uploaded = upload(site, s, audience(30))

    assert uploaded.status_code == 303
    preview_path = uploaded.headers["location"]
    preview = s.get(site.url + preview_path).text
    assert "Hi Name0, your order ships today." in preview  # the first rendered messages
    assert re.search(r'tile-value">30<.*Messages to send', preview, re.S)
    assert "Every record makes a message." in preview
    assert stats(simulator)["posts"] == 0  # nothing is sent before Send

    sent = send(site, s, preview_path)

    assert sent.status_code == 303 and re.fullmatch(r"/runs/\d+", sent.headers["location"])
    run_id = int(sent.headers["location"].rsplit("/", 1)[1])
    done = wait_for_state(site, s, run_id, "completed")
    assert done["origin"] == "web" and done["progress"]["by_status"] == {"delivered": 30}
    assert sorted(stats(simulator)["posts_by_to"].values()) == [1] * 30  # one message each
    page = s.get(f"{site.url}/runs/{run_id}").text
    assert "Completed" in page and "Download all results (CSV)" in page
    listed = s.get(site.url + "/runs").text
    assert f'href="/runs/{run_id}"' in listed and "spring" in listed


@pytest.mark.parametrize(
    ("filename", "content", "encoding"),
    [
        ("semicolons.csv", audience(12, delimiter=";").encode("cp1252"), "cp1252"),
        ("tabs.tsv", audience(12, delimiter="\t").encode("utf-8"), ""),
        ("excel.csv", audience(12, delimiter=";").encode("utf-16"), ""),
        ("bom.csv", b"\xef\xbb\xbfsep=;\r\n" + audience(12, delimiter=";").encode("utf-8"), ""),
        (
            "people.jsonl",
            "".join(
                json.dumps({"name": f"Zoë{i}", "phone": phone(i)}, ensure_ascii=False) + "\n"
                for i in range(12)
            ).encode("utf-8"),
            "",
        ),
    ],
)
def test_every_format_the_command_line_reads_is_previewed_and_sent(
    site: Site, simulator: str, filename: str, content: bytes, encoding: str
) -> None:
    configure(site, simulator)
    s = site.signed_in(MARKETER)

    run_id = start(site, s, content, filename=filename, encoding=encoding)  # type: ignore[arg-type]

    done = wait_for_state(site, s, run_id, "completed")
    assert done["progress"]["by_status"] == {"delivered": 12}
    results = s.get(f"{site.url}/runs/{run_id}/results.csv")
    assert results.status_code == 200 and "text/csv" in results.headers["content-type"]
    assert f'filename="run-{run_id}-results.csv"' in results.headers["content-disposition"]
    assert results.text.count("delivered") == 12


def test_malformed_records_get_their_errors_and_the_good_records_still_go_out(
    site: Site, simulator: str
) -> None:
    configure(site, simulator)
    s = site.signed_in(MARKETER)
    content = audience(20, bad=lambda i: {3: "not a phone", 7: ""}.get(i))
    content += "Extra,+12125559999,Berlin,surplus\r\n"  # one value too many

    uploaded = upload(site, s, content)

    preview = s.get(site.url + uploaded.headers["location"]).text
    assert re.search(r'tile-value">3<.*Would fail', preview, re.S)
    assert "column &#39;phone&#39;" in preview  # the reason, escaped
    run_id = int(send(site, s, uploaded.headers["location"]).headers["location"].split("/")[-1])
    done = wait_for_state(site, s, run_id, "completed")
    assert done["progress"]["by_status"] == {"delivered": 18, "error": 3}
    assert stats(simulator)["posts"] == 18


def test_a_file_the_reader_refuses_is_refused_with_its_words_and_nothing_is_kept(
    site: Site, simulator: str
) -> None:
    configure(site, simulator)
    s = site.signed_in(MARKETER)

    refused = upload(
        site, s, 'name,phone,city\r\n"Ann,+12125550001,Berlin\r\nBob,+12125550002,Rome\r\n'
    )

    assert refused.status_code == 422
    assert 'id="e-file"' in refused.text and "unclosed quote" in refused.text
    assert not any((site.home / "uploads").iterdir())
    assert "No run yet" in s.get(site.url + "/runs").text


def test_a_missing_column_a_missing_choice_and_a_wrong_extension_are_shown_by_their_fields(
    site: Site, simulator: str
) -> None:
    configure(site, simulator)
    s = site.signed_in(MARKETER)

    no_column = upload(site, s, "name,mobile\r\nAnn,+12125550001\r\n")
    no_touchpoint = upload(site, s, audience(2), touchpoint="")
    not_csv = upload(site, s, audience(2), filename="audience.xlsx")
    bad_encoding = upload(site, s, audience(2), encoding="klingon")

    assert no_column.status_code == 422 and "has no column &#39;phone&#39;" in no_column.text
    assert 'id="e-touchpoint"' in no_touchpoint.text
    assert 'id="e-file"' in not_csv.text and "not an audience file" in not_csv.text
    assert 'id="e-encoding"' in bad_encoding.text
    assert not any((site.home / "uploads").iterdir())


def test_a_repeated_send_is_shown_with_a_choice_to_send_anyway(site: Site, simulator: str) -> None:
    configure(site, simulator)
    s = site.signed_in(MARKETER)
    first = start(site, s, audience(5))
    wait_for_state(site, s, first, "completed")
    second = upload(site, s, audience(5))

    refused = send(site, s, second.headers["location"])

    assert refused.status_code == 409
    assert "already went to exactly this audience" in refused.text
    assert f'href="/runs/{first}"' in refused.text and "Send anyway" in refused.text
    anyway = send(site, s, second.headers["location"], again=True)
    assert anyway.status_code == 303
    wait_for_state(site, s, int(anyway.headers["location"].split("/")[-1]), "completed")
    assert sorted(stats(simulator)["posts_by_to"].values()) == [2] * 5


def test_a_second_send_of_the_same_upload_opens_the_run_it_became(
    site: Site, simulator: str
) -> None:
    configure(site, simulator)
    s = site.signed_in(MARKETER)
    preview_path = upload(site, s, audience(5)).headers["location"]
    first = send(site, s, preview_path, again=True)

    twice = send(site, s, preview_path, again=True)  # a double click, or the back button
    kept = site.post(s, preview_path + "/discard", {}, preview_path)

    assert twice.headers["location"] == first.headers["location"]
    page = s.get(site.url + preview_path).text
    assert "This file was sent as run 1." in page and "/send" not in page
    assert kept.status_code == 303 and s.get(site.url + preview_path).status_code == 200
    wait_for_state(site, s, 1, "completed")
    assert sorted(stats(simulator)["posts_by_to"].values()) == [1] * 5


def test_an_upload_over_the_limit_is_refused_before_it_is_kept(
    home: Path, simulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smslink.web.app import ServeOptions

    monkeypatch.setattr(ServeOptions, "__init__", _small_uploads(ServeOptions.__init__))
    from tests.web.site import running_site

    with running_site(home) as site:
        configure(site, simulator)
        s = site.signed_in(MARKETER)

        refused = upload(site, s, audience(3000))  # about 90 kB, the limit is 20 kB

        assert refused.status_code == 413
        assert 'id="e-file"' in refused.text and "larger than 20 KB" in refused.text
        assert not (site.home / "uploads").exists() or not any((site.home / "uploads").iterdir())
        assert upload(site, s, audience(50)).status_code == 303


def _small_uploads(init: Callable[..., None]) -> Callable[..., None]:
    def smaller(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["max_upload_bytes"] = 20 * 1024
        init(self, *args, **kwargs)

    return smaller


def test_an_upload_can_be_checked_against_another_touchpoint_or_cancelled(
    site: Site, simulator: str
) -> None:
    configure(site, simulator)
    with open_app(_config(site)) as app:
        app.touchpoints.add(
            Touchpoint("city", "sim", "Hello from <City>!", "phone", {"City": "city"})
        )
    s = site.signed_in(MARKETER)
    preview_path = upload(site, s, audience(3)).headers["location"]

    again = site.post(s, preview_path, {"touchpoint": "city", "encoding": ""}, preview_path)

    assert again.status_code == 303
    assert "Hello from Berlin!" in s.get(site.url + preview_path).text
    cancelled = site.post(s, preview_path + "/discard", {}, preview_path)
    assert cancelled.headers["location"] == "/runs/new"
    assert s.get(site.url + preview_path).status_code == 404


# -- the run page ----------------------------------------------------------------------------


def test_the_table_filters_by_status_and_text_and_pages(site: Site, simulator: str) -> None:
    configure(site, simulator)
    s = site.signed_in(MARKETER)
    run_id = start(site, s, audience(120, bad=lambda i: "nope" if i % 40 == 0 else None))
    wait_for_state(site, s, run_id, "completed")
    table = f"{site.url}/runs/{run_id}/table"

    first = s.get(table).text
    errors = s.get(table, params={"status": "error"}).text
    found = s.get(table, params={"q": "name77"}).text
    second = s.get(table, params={"page": "3"}).text
    nothing = s.get(table, params={"q": "nobody-has-this"}).text

    assert f"Records 1{DASH}50 of 120" in first and "Page 1 of 3" in first
    assert f"Records 1{DASH}3 of 3" in errors and errors.count("badge status-error") == 3
    assert f"Records 1{DASH}1 of 1" in found and phone(77) in found
    assert f"Records 101{DASH}120 of 120" in second
    assert "No record matches this filter." in nothing
    full = s.get(f"{site.url}/runs/{run_id}", params={"status": "error", "q": "nope"}).text
    assert f"Records 1{DASH}3 of 3" in full and 'option value="error" selected' in full


def test_downloads_match_the_store(site: Site) -> None:
    with simulator_with(undelivered_share=0.2, failed_share=0.1) as simulator:
        configure(site, simulator)
        s = site.signed_in(MARKETER)
        run_id = start(site, s, audience(60, bad=lambda i: "x" if i in (5, 6) else None))
        wait_for_state(site, s, run_id, "completed")

        everything = csv_rows(s.get(f"{site.url}/runs/{run_id}/results.csv").text)
        problems = csv_rows(s.get(f"{site.url}/runs/{run_id}/results.csv?problems=1").text)

    in_store = store_statuses(site, run_id)
    assert [row["status"] for row in everything] == [in_store[n] for n in range(1, 61)]
    expected = [n for n, status in in_store.items() if status != "delivered"]
    assert len(expected) > 5
    assert [row["phone"] for row in problems] == [everything[n - 1]["phone"] for n in expected]
    assert {row["status"] for row in problems} <= {"error", "undelivered", "failed", "sent"}


def test_a_run_is_stopped_and_resumed_from_its_page(site: Site) -> None:
    with simulator_with(latency_ms=20) as simulator:
        configure(site, simulator, max_segments_per_second=40, concurrency=4)
        s = site.signed_in(MARKETER)
        run_id = start(site, s, audience(400))
        deadline = time.monotonic() + 20
        while run_json(site, s, run_id)["progress"]["sent"] < 20:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        stopped = site.post(s, f"/runs/{run_id}/stop", {}, f"/runs/{run_id}")

        assert stopped.status_code == 303
        page = s.get(site.url + stopped.headers["location"]).text
        assert "Stopping" in page or "Stopped" in page
        halted = wait_for_state(site, s, run_id, "stopped", timeout=20)
        assert halted["progress"]["sent"] < 400
        assert "stopped on request" in (halted["error"] or "")
        assert f'action="/runs/{run_id}/resume"' in s.get(f"{site.url}/runs/{run_id}").text

        resumed = site.post(s, f"/runs/{run_id}/resume", {}, f"/runs/{run_id}")

        assert resumed.status_code == 303
        done = wait_for_state(site, s, run_id, "completed", timeout=60)
        assert done["progress"]["by_status"] == {"delivered": 400}
        assert sorted(set(stats(simulator)["posts_by_to"].values())) == [1]


def test_sending_again_goes_to_those_worth_another_try_and_says_why(site: Site) -> None:
    with simulator_with(undelivered_share=0.25, failed_share=0.15) as simulator:
        configure(site, simulator)
        s = site.signed_in(MARKETER)
        # record 11 has Twilio's magic "not a mobile number" (21614): a recipient refusal.
        run_id = start(site, s, audience(80, bad=lambda i: "+15005550009" if i == 10 else None))
        wait_for_state(site, s, run_id, "completed")
        messages = _messages(simulator)
        retry = {"30003", "30008"}
        expected = {
            m["to"]
            for m in messages
            if m["status"] in ("undelivered", "failed") and str(m["error_code"]) in retry
        }
        left_out = {
            m["to"]
            for m in messages
            if m["status"] in ("undelivered", "failed") and str(m["error_code"]) not in retry
        }
        assert expected and left_out

        plan = s.get(f"{site.url}/runs/{run_id}/again").text

        assert f"Send again to {len(expected)} recipients" in plan
        assert "Left out" in plan and "Twilio refused the recipient" in plan
        assert "The delivery failed for a reason that passes" in plan
        before = stats(simulator)["posts_by_to"]
        started = site.post(s, f"/runs/{run_id}/again", {}, f"/runs/{run_id}/again")
        assert started.status_code == 303
        new_id = int(started.headers["location"].split("/")[-1])
        wait_for_state(site, s, new_id, "completed")
        after = stats(simulator)["posts_by_to"]
        again_to = {to for to, n in after.items() if n > before.get(to, 0)}
        assert again_to == expected

        once_more = site.post(s, f"/runs/{run_id}/again", {}, f"/runs/{run_id}/again")
        assert once_more.status_code == 409 and "Send anyway" in once_more.text


def _messages(simulator: str) -> list[dict[str, Any]]:
    root = simulator.rsplit("/2010-04-01", 1)[0]
    with urllib.request.urlopen(f"{root}/_messages") as answer:
        return list(json.load(answer)["messages"])


def test_an_unfinished_run_cannot_be_sent_again(site: Site, simulator: str) -> None:
    configure(site, simulator)
    with open_app(_config(site)) as app:
        path = site.home / "a.csv"
        path.write_text(audience(3), encoding="utf-8")
        from smslink.app import RunRequest

        run_id = app.runs.start(RunRequest("spring", path, site.home / "out.csv"))
        assert app.runs.get(run_id).state is RunState.CREATED
    s = site.signed_in(MARKETER)

    page = s.get(f"{site.url}/runs/{run_id}/again").text

    assert "only a completed run can be sent again" in page
    assert f'action="/runs/{run_id}/resume"' in s.get(f"{site.url}/runs/{run_id}").text


def test_every_form_of_the_run_pages_needs_its_csrf_token(site: Site, simulator: str) -> None:
    configure(site, simulator)
    s = site.signed_in(ADMIN)
    run_id = start(site, s, audience(3))
    preview_path = upload(site, s, audience(4)).headers["location"]

    for path in (
        "/runs/new",
        preview_path,
        preview_path + "/send",
        preview_path + "/discard",
        f"/runs/{run_id}/stop",
        f"/runs/{run_id}/resume",
        f"/runs/{run_id}/again",
    ):
        answer = s.post(site.url + path, data={"csrf": "forged"}, allow_redirects=False)
        assert answer.status_code == 403 and "The form has expired" in answer.text, path
    wait_for_state(site, s, run_id, "completed")


def test_the_run_pages_need_a_sign_in(site: Site) -> None:
    anonymous = site.session()

    for path in ("/runs", "/runs/new", "/runs/1", "/runs/1/table", "/runs/1/results.csv"):
        answer = anonymous.get(site.url + path, allow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")


def test_the_sample_audience_is_offered_only_by_the_demo(site: Site) -> None:
    s = site.signed_in(MARKETER)

    assert s.get(site.url + "/runs/sample-audience.csv").status_code == 404
    assert "sample-audience.csv" not in s.get(site.url + "/runs/new").text
    assert "/signin?" in site.session().get(site.url + "/runs/sample-audience.csv").url
