"""The administrator in a real browser: sign in, add a connection, press Test (success,
then a wrong token showing Twilio's 20003). Screenshots land in docs/screenshots/."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.web.conftest import TOKEN
from tests.web.site import ADMIN, SHOTS, Site


def sign_in(page: Page, site: Site, who: tuple[str, str] = ADMIN) -> None:
    page.goto(site.url + "/signin")
    page.get_by_label("Name").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(site.url + "/runs")


def test_adding_and_testing_a_connection(page: Page, site: Site, simulator: str) -> None:
    sign_in(page, site)
    page.get_by_role("link", name="Connections").click()
    expect(page.get_by_text("No connection yet")).to_be_visible()
    page.get_by_role("link", name="Add the first connection").click()

    page.get_by_label("Connection").fill("sim")
    page.get_by_label("Base URL", exact=True).fill(simulator)
    page.get_by_label("Account SID").fill("AC" + "c1" * 16)
    page.get_by_label("Auth Token").fill(TOKEN)
    page.get_by_label("From number").fill("+15005550006")
    page.screenshot(path=str(SHOTS / "connection-form.png"), full_page=True)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The connection was added")).to_be_visible()

    page.get_by_role("button", name="Test", exact=True).click()
    expect(page.get_by_text("Success:")).to_be_visible()
    page.screenshot(path=str(SHOTS / "connection-test.png"), full_page=True)

    page.get_by_label("Auth Token").fill("not the token")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Test", exact=True).click()
    expect(page.get_by_text("Twilio refused: 20003: Authenticate")).to_be_visible()
    page.get_by_role("link", name="All connections").click()
    expect(page.get_by_text("failed")).to_be_visible()
    page.screenshot(path=str(SHOTS / "connections.png"), full_page=True)
