"""A journey's standing run on the pages: listed with the runs as "journey records" rather
than a file, its page showing the records as they arrive with their results, a bad one
among them (screenshot journey-run.png)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.web.site import MARKETER, SHOTS, Site
from tests.web.test_api_runs import token
from tests.web.test_browser_connections import sign_in
from tests.web.test_journeys import final_events, post, record
from tests.web.test_runs import configure, simulator_with


def test_a_journeys_run_shows_its_records_as_they_arrive(page: Page, site: Site) -> None:
    with simulator_with() as simulator:
        configure(site, simulator)
        auth = token(site)
        batch = {"records": [record(i) for i in range(1, 6)] + [record(6, phone="12")]}
        run = post(site, auth, batch).json()["run"]
        final_events(site, auth, 6)
        sign_in(page, site, MARKETER)
        expect(page.get_by_text("journey records")).to_be_visible()
        page.get_by_role("link", name=f"Run {run}", exact=True).click()
        expect(page.get_by_role("heading", name=f"Run {run} · spring")).to_be_visible()
        expect(page.get_by_text("journey records")).to_be_visible()
        expect(page.locator('[data-bind="final"]')).to_have_text("6")
        expect(page.get_by_text("+12125550005")).to_be_visible()
        expect(page.get_by_text("is not a valid phone number", exact=False).first).to_be_visible()
        page.screenshot(path=str(SHOTS / "journey-run.png"), full_page=True)
