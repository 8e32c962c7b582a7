"""The runs API over real HTTP with bearer tokens (and a page session with its CSRF header):
preview and start by upload, watch (JSON and Server-Sent Events), read records a page at a
time, download, stop and resume, send again; one error shape for every refusal."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import requests

from smslink.app import open_app
from smslink.domain.models import Role
from tests.web.site import MARKETER, Site
from tests.web.test_runs import (
    _config,
    audience,
    configure,
    csv_rows,
    simulator_with,
    stats,
)


def token(site: Site, who: str = MARKETER[0]) -> dict[str, str]:
    """An Authorization header with a new API token of user `who`."""
    with open_app(_config(site)) as app:
        [user] = [u for u in app.users.list() if u.name == who]
        _, secret = app.users.create_token(user.id, "tests")
    return {"Authorization": f"Bearer {secret}"}


def post_audience(
    site: Site,
    headers: dict[str, str],
    content: str,
    *,
    path: str = "/api/runs",
    filename: str = "audience.csv",
    **fields: str,
) -> requests.Response:
    data = {"touchpoint": "spring", **fields}
    return requests.post(
        site.url + path,
        headers=headers,
        data=data,
        files={"file": (filename, content.encode("utf-8"), "text/csv")},
        timeout=60,
    )


def wait(site: Site, headers: dict[str, str], run_id: int, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        run = requests.get(f"{site.url}/api/runs/{run_id}", headers=headers, timeout=10).json()
        if run["state"] == state and not run["progress"]["active"]:
            return dict(run)
        assert time.monotonic() < deadline, run
        time.sleep(0.1)


def test_a_preview_by_api_sends_and_keeps_nothing(site: Site, simulator: str) -> None:
    configure(site, simulator)
    auth = token(site)

    answer = post_audience(
        site, auth, audience(6, bad=lambda i: "oops" if i == 2 else None), path="/api/runs/preview"
    )

    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert (preview["records"], preview["messages"], preview["would_fail"]) == (6, 5, 1)
    assert preview["first_messages"][0]["body"] == "Hi Name0, your order ships today."
    assert preview["problems"][0]["record"] == 3
    assert requests.get(site.url + "/api/runs", headers=auth, timeout=10).json() == []
    assert not any((site.home / "uploads").iterdir())
    assert stats(simulator)["posts"] == 0


def test_a_run_is_started_by_upload_watched_paged_and_downloaded(site: Site) -> None:
    with simulator_with(undelivered_share=0.2) as simulator:
        configure(site, simulator)
        auth = token(site)

        started = post_audience(site, auth, audience(70, bad=lambda i: "x" if i < 3 else None))

        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        assert started.headers["location"] == f"/api/runs/{run_id}"
        done = wait(site, auth, run_id, "completed")
        by_status = done["progress"]["by_status"]
        assert by_status["error"] == 3 and sum(by_status.values()) == 70
        assert done["origin"] == "web" and done["audience"] == "audience.csv"

        page = requests.get(
            f"{site.url}/api/runs/{run_id}/deliveries",
            headers=auth,
            params={"status": "error", "per_page": 2},
            timeout=10,
        ).json()
        found = requests.get(
            f"{site.url}/api/runs/{run_id}/deliveries",
            headers=auth,
            params={"q": "name42"},
            timeout=10,
        ).json()
        results = csv_rows(
            requests.get(f"{site.url}/api/runs/{run_id}/results.csv", headers=auth, timeout=30).text
        )
        problems = csv_rows(
            requests.get(
                f"{site.url}/api/runs/{run_id}/results.csv?problems=true", headers=auth, timeout=30
            ).text
        )

    assert (page["matching"], page["pages"], len(page["deliveries"])) == (3, 2, 2)
    assert [d["record"] for d in page["deliveries"]] == [1, 2]
    assert page["deliveries"][0]["row"] == {"name": "Name0", "phone": "x", "city": "Berlin"}
    assert [d["row"]["name"] for d in found["deliveries"]] == ["Name42"]
    assert len(results) == 70
    assert sum(r["status"] == "undelivered" for r in results) == by_status.get("undelivered", 0)
    assert len(problems) == 70 - by_status["delivered"]


def test_refusals_have_one_shape_and_name_their_field(site: Site, simulator: str) -> None:
    configure(site, simulator)
    auth = token(site)

    unclosed = post_audience(site, auth, 'name,phone\r\n"Ann,+12125550001\r\nBob,+1212\r\n')
    unknown = post_audience(site, auth, audience(2), touchpoint="nope")
    no_file = requests.post(
        site.url + "/api/runs", headers=auth, data={"touchpoint": "spring"}, timeout=10
    )
    no_run = requests.get(site.url + "/api/runs/999", headers=auth, timeout=10)
    bad_filter = requests.get(
        site.url + "/api/runs/999/deliveries", headers=auth, params={"status": "x"}, timeout=10
    )

    assert unclosed.status_code == 422
    [problem] = unclosed.json()["error"]["problems"]
    assert problem["field"] == "file" and "unclosed quote" in problem["message"]
    assert unknown.status_code == 422
    assert unknown.json()["error"]["problems"][0]["field"] == "touchpoint"
    assert no_file.status_code == 422 and no_file.json()["error"]["problems"][0]["field"] == "file"
    assert no_run.status_code == 404 and no_run.json()["error"]["kind"] == "not_found"
    assert bad_filter.status_code == 404  # the run is looked up first
    assert requests.get(site.url + "/api/runs", timeout=10).status_code == 401


def test_a_repeat_is_refused_with_its_remedy_and_sent_with_again(
    site: Site, simulator: str
) -> None:
    configure(site, simulator)
    auth = token(site)
    first = post_audience(site, auth, audience(4)).json()["id"]
    wait(site, auth, first, "completed")

    repeat = post_audience(site, auth, audience(4))
    anyway = post_audience(site, auth, audience(4), again="true")

    assert repeat.status_code == 422
    remedy = repeat.json()["error"]["remedy"]
    assert remedy == {"action": "send_again", "args": {"run_id": first}}
    assert anyway.status_code == 201
    wait(site, auth, anyway.json()["id"], "completed")


def test_a_session_needs_its_csrf_header_to_change_anything(site: Site, simulator: str) -> None:
    configure(site, simulator)
    s = site.signed_in(MARKETER)
    files = {"file": ("a.csv", audience(2).encode(), "text/csv")}

    without = s.post(site.url + "/api/runs", data={"touchpoint": "spring"}, files=files)
    with_header = s.post(
        site.url + "/api/runs",
        data={"touchpoint": "spring"},
        files=files,
        headers={"X-CSRF-Token": site.csrf(s, "/runs")},
    )

    assert without.status_code == 403 and without.json()["error"]["kind"] == "csrf"
    assert with_header.status_code == 201
    assert s.get(site.url + "/api/runs").status_code == 200  # reading needs no header


def test_stop_and_resume_by_api(site: Site) -> None:
    with simulator_with(latency_ms=20) as simulator:
        configure(site, simulator, max_segments_per_second=40, concurrency=4)
        auth = token(site)
        run_id = post_audience(site, auth, audience(300)).json()["id"]
        time.sleep(1.0)

        stopping = requests.post(f"{site.url}/api/runs/{run_id}/stop", headers=auth, timeout=10)

        assert stopping.status_code == 200
        stopped = wait(site, auth, run_id, "stopped")
        assert stopped["progress"]["final"] < 300
        resumed = requests.post(f"{site.url}/api/runs/{run_id}/resume", headers=auth, timeout=10)
        assert resumed.status_code == 202
        done = wait(site, auth, run_id, "completed")
        assert done["progress"]["by_status"] == {"delivered": 300}
        completed = requests.post(f"{site.url}/api/runs/{run_id}/resume", headers=auth, timeout=10)
        assert completed.status_code == 422


def test_the_event_stream_reports_at_least_every_second_until_the_end(site: Site) -> None:
    with simulator_with(latency_ms=10) as simulator:
        configure(site, simulator, max_segments_per_second=100)
        auth = token(site)
        run_id = post_audience(site, auth, audience(250)).json()["id"]

        events = _read_events(f"{site.url}/api/runs/{run_id}/events", auth)

    names = [name for name, _ in events]
    assert names[-1] == "end" and names.count("progress") >= 2
    moments = [data["at"] for _, data in events]
    assert max(b - a for a, b in itertools.pairwise(moments)) < 1.0
    finals = [data["final"] for _, data in events]
    assert finals == sorted(finals) and finals[-1] == 250
    assert events[-1][1]["by_status"] == {"delivered": 250}
    assert any(data["rate"] for _, data in events)


def _read_events(url: str, headers: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Every event of the stream, reconnecting when one stream ends, until `end`."""
    events: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with requests.get(url, headers=headers, stream=True, timeout=30) as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            name = ""
            for line in answer.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: "):
                    events.append((name, json.loads(line[len("data: ") :])))
                    if name == "end":
                        return events
    raise AssertionError("the stream never ended")


def test_sending_again_by_api(site: Site) -> None:
    with simulator_with(failed_share=0.3) as simulator:
        configure(site, simulator)
        auth = token(site)
        run_id = post_audience(site, auth, audience(40)).json()["id"]
        wait(site, auth, run_id, "completed")

        plan = requests.get(f"{site.url}/api/runs/{run_id}/again", headers=auth, timeout=30).json()
        started = requests.post(f"{site.url}/api/runs/{run_id}/again", headers=auth, timeout=30)
        repeat = requests.post(f"{site.url}/api/runs/{run_id}/again", headers=auth, timeout=30)
        anyway = requests.post(
            f"{site.url}/api/runs/{run_id}/again", headers=auth, json={"again": True}, timeout=30
        )

        assert started.status_code == 201, started.text
        wait(site, auth, started.json()["id"], "completed")
        wait(site, auth, anyway.json()["id"], "completed")

    chosen = sum(g["records"] for g in plan["groups"] if g["sends"])
    assert plan["chosen"] == chosen > 0
    assert plan["considered"] == sum(g["records"] for g in plan["groups"])
    assert {g["reason"] for g in plan["groups"]} <= {"temporary", "lasting"}
    assert started.json()["progress"]["records"] == chosen
    assert repeat.status_code == 422 and repeat.json()["error"]["remedy"]["action"] == "send_again"
    assert anyway.status_code == 201


def test_the_openapi_description_covers_the_runs_api(site: Site) -> None:
    spec = requests.get(site.url + "/openapi.json", timeout=10).json()

    paths = spec["paths"]
    for path in (
        "/api/runs",
        "/api/runs/preview",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/deliveries",
        "/api/runs/{run_id}/results.csv",
        "/api/runs/{run_id}/stop",
        "/api/runs/{run_id}/resume",
        "/api/runs/{run_id}/again",
        "/api/runs/{run_id}/events",
    ):
        assert path in paths, path
    body = paths["/api/runs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["required"] == ["touchpoint", "file"]
    assert "RunOut" in spec["components"]["schemas"]


def test_an_administrator_may_use_it_too(site: Site, simulator: str) -> None:
    configure(site, simulator)
    with open_app(_config(site)) as app:
        [admin] = [u for u in app.users.list() if u.role is Role.ADMIN]
    auth = token(site, admin.name)

    started = post_audience(site, auth, audience(2))

    assert started.status_code == 201
    wait(site, auth, started.json()["id"], "completed")
