"""A marketer's runs in a real browser: upload 2,000 records with some bad rows, check the
preview, send, watch the run finish without reloading the page, check the counts against the
results download; stop and resume; send again to the ones who did not get it. Screenshots
of every page land in docs/screenshots/, at a desktop width and at a phone's."""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.web.site import MARKETER, SHOTS, Site
from tests.web.test_browser_connections import sign_in
from tests.web.test_runs import audience, configure, simulator_with

PHONE = {"width": 375, "height": 800}
DESKTOP = {"width": 1280, "height": 900}


def shoot(page: Page, name: str, *, phone: bool = True) -> None:
    """`name`.png at the desktop width, and `name`-phone.png at a phone's."""
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if phone:
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(400)  # the chart redraws for the new width
        page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)
        page.set_viewport_size(DESKTOP)
        page.wait_for_timeout(400)


def bad_rows(i: int) -> str | None:
    """Every 97th record has no usable phone number; record 500 an empty one."""
    if i == 499:
        return ""
    return "n/a" if i % 97 == 13 else None


def write_audience(tmp_path: Path, n: int, **kwargs: object) -> Path:
    path = tmp_path / "spring-campaign.csv"
    content = audience(n, **kwargs)  # type: ignore[arg-type]
    content += "Extra,+12125559999,Berlin,one value too many\r\n"
    path.write_text(content, encoding="utf-8")
    return path


def upload_and_preview(page: Page, site: Site, path: Path) -> None:
    page.goto(site.url + "/runs/new")
    page.get_by_label("Touchpoint").select_option("spring")
    expect(page.get_by_text("Hi <Name>, your order ships today.")).to_be_visible()
    page.get_by_label("Audience file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and preview").click()
    expect(page.get_by_role("heading", name="Check before sending")).to_be_visible()


def number(text: str) -> int:
    return int(text.replace(",", "").strip() or 0)


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Poll from the test (the page's policy allows no script from a string)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def status_counts(page: Page) -> dict[str, int]:
    counts = {}
    for status in ("delivered", "sent", "undelivered", "failed", "error"):
        text = page.locator(f'[data-count="{status}"]').inner_text()
        counts[status] = int(text.replace(",", ""))
    return {k: v for k, v in counts.items() if v}


def test_a_run_of_two_thousand_records_finishes_live(
    page: Page, site: Site, tmp_path: Path
) -> None:
    with simulator_with(undelivered_share=0.04, failed_share=0.02, sent_s=0.4) as simulator:
        configure(site, simulator, max_segments_per_second=300, concurrency=20)
        path = write_audience(tmp_path, 2000, bad=bad_rows)
        sign_in(page, site, MARKETER)
        expect(page.get_by_text("No run yet")).to_be_visible()
        page.get_by_role("link", name="Start the first run").click()
        shoot(page, "new-run-form")

        upload_and_preview(page, site, path)

        expect(page.locator(".tile", has_text="Records")).to_contain_text("2,001")
        expect(page.locator(".tile", has_text="Would fail")).to_contain_text("23")
        expect(page.get_by_text("Hi Name0, your order ships today.")).to_be_visible()
        shoot(page, "new-run")
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Send 1,978 messages").click()

        expect(page.get_by_role("heading", name="Run 1 · spring")).to_be_visible()
        page.evaluate("window.sameDocument = true")  # gone if the page reloads
        expect(page.locator('[data-bind="state"]')).to_have_text("Sending")
        wait_until(lambda: number(page.locator('[data-bind="final"]').inner_text()) > 400)
        expect(page.locator('[data-bind="rate"]')).to_contain_text("per second")
        shoot(page, "run-live", phone=False)
        expect(page.locator('[data-bind="state"]')).to_have_text("Completed", timeout=60_000)

        assert page.evaluate("window.sameDocument") is True
        expect(page.locator('[data-bind="final"]')).to_have_text("2,001")
        expect(page.locator('[data-bind="eta"]')).to_have_text("done")
        counts = status_counts(page)
        with page.expect_download() as download:
            page.get_by_role("link", name="Download all results (CSV)").click()
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
        assert Counter(row["status"] for row in rows) == counts
        assert counts["error"] == 23 and sum(counts.values()) == 2001
        expect(page.locator("[data-chart-svg] polygon").first).to_be_visible()
        expect(page.locator("#recipients-title")).to_have_count(1)
        expect(page.locator(".recipients tbody tr")).to_have_count(50)
        expect(
            page.get_by_role("link", name="Send again to those who did not get it")
        ).to_be_visible()
        shoot(page, "run-done")

        page.get_by_label("Status", exact=True).select_option("error")
        expect(page.locator("[data-table-count]")).to_contain_text("of 23")
        expect(page.locator(".recipients tbody tr")).to_have_count(23)
        page.get_by_label("Search").fill("Extra")
        expect(page.locator(".recipients tbody tr")).to_have_count(1)
        expect(page.locator(".recipients")).to_contain_text("value")
        assert page.evaluate("window.sameDocument") is True
        assert "status=error" in page.url and "q=Extra" in page.url

        page.get_by_role("link", name="Runs").first.click()
        expect(page.locator(".runs-table")).to_contain_text("Completed")
        shoot(page, "runs")
        page.goto("about:blank")  # no event stream left open when the service stops


def test_a_run_is_stopped_and_resumed_in_the_browser(
    page: Page, site: Site, tmp_path: Path
) -> None:
    with simulator_with() as simulator:
        configure(site, simulator, max_segments_per_second=60, concurrency=5)
        path = write_audience(tmp_path, 400)
        sign_in(page, site, MARKETER)
        upload_and_preview(page, site, path)
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Send 400 messages").click()
        expect(page.locator('[data-bind="state"]')).to_have_text("Sending")

        page.get_by_role("button", name="Stop").click()

        expect(page.locator('[data-bind="state"]')).to_have_text("Stopped", timeout=15_000)
        expect(page.get_by_text("stopped on request")).to_be_visible()
        shoot(page, "run-stopped", phone=False)
        page.evaluate("window.sameDocument = true")
        page.get_by_role("button", name="Resume").click()
        expect(page.locator('[data-bind="state"]')).to_have_text("Completed", timeout=60_000)
        expect(page.locator('[data-count="delivered"]')).to_have_text("400")
        expect(page.get_by_role("button", name="Resume")).to_be_hidden()
        page.goto("about:blank")


def test_sending_again_to_the_ones_who_did_not_get_it(
    page: Page, site: Site, tmp_path: Path
) -> None:
    with simulator_with(undelivered_share=0.2, failed_share=0.1) as simulator:
        configure(site, simulator)
        path = write_audience(tmp_path, 150)
        sign_in(page, site, MARKETER)
        upload_and_preview(page, site, path)
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Send 150 messages").click()
        expect(page.locator('[data-bind="state"]')).to_have_text("Completed", timeout=60_000)

        page.get_by_role("link", name="Send again to those who did not get it").click()

        expect(
            page.get_by_role("heading", name="Send again to those who did not get it")
        ).to_be_visible()
        expect(page.locator(".again-table")).to_contain_text("Sent again")
        expect(page.locator(".again-table")).to_contain_text("Left out")
        chosen = int(page.locator(".tile.good .tile-value").inner_text().replace(",", ""))
        assert chosen > 0
        shoot(page, "send-again")
        page.get_by_role("button", name=f"Send again to {chosen} recipients").click()

        expect(page.get_by_role("heading", name="Run 2 · spring")).to_be_visible()
        expect(page.locator('[data-bind="state"]')).to_have_text("Completed", timeout=60_000)
        expect(page.locator('[data-bind="records"]')).to_have_text(str(chosen))
        page.goto("about:blank")
