"""Users, API tokens, opt-outs and the API documentation in a real browser: an administrator
adds a marketer and creates a token (shown once); the marketer is refused the users and
connections pages and removes an opt-out with a reason. Screenshots land in
docs/screenshots/ (users.png, tokens.png, optouts.png, api-docs.png)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, Page, expect

from smslink.domain.models import OptOut
from tests.web.site import ADMIN, SHOTS, Site
from tests.web.test_browser_connections import sign_in
from tests.web.test_users import app_of

MIA = ("mia", "a long passphrase")


def _phone_page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 375, "height": 800}, locale="en-US")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    return tab


def test_an_administrator_adds_a_marketer_who_is_refused_the_admin_pages(
    page: Page, browser: Browser, site: Site
) -> None:
    sign_in(page, site, ADMIN)
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()

    page.get_by_label("Name").fill(MIA[0])
    page.get_by_role("radio", name=re.compile(r"^Marketer")).check()
    page.get_by_label("Password", exact=True).fill(MIA[1])
    page.get_by_label("Password again").fill(MIA[1])
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_text("The user was added")).to_be_visible()
    expect(page.get_by_role("heading", name="mia")).to_be_visible()

    page.get_by_role("link", name="All users").click()
    expect(page.get_by_role("link", name="mia")).to_be_visible()
    page.screenshot(path=str(SHOTS / "users.png"), full_page=True)

    page.get_by_role("link", name="My API tokens").click()
    expect(page.get_by_text("No active API token.")).to_be_visible()
    page.get_by_label("Token name").fill("nightly export")
    page.get_by_role("button", name="Create token").click()
    shown = page.locator("[data-token]")
    expect(shown).to_be_visible()
    token = shown.inner_text()
    assert token.startswith("smslink_")
    expect(page.get_by_text("it is shown only this once")).to_be_visible()
    expect(page.get_by_role("cell", name="nightly export", exact=True)).to_be_visible()
    page.screenshot(path=str(SHOTS / "tokens.png"), full_page=True)
    page.reload()
    expect(page.get_by_text("shown once already")).to_be_visible()
    assert token not in page.content()

    phone = _phone_page(browser)
    try:
        sign_in(phone, site, MIA)
        nav = phone.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Opt-outs")).to_be_visible()
        expect(nav.get_by_role("link", name="Users")).to_have_count(0)
        expect(nav.get_by_role("link", name="Connections")).to_have_count(0)
        for path in ("/users", "/connections"):
            phone.goto(site.url + path)
            expect(phone.get_by_role("heading", name="Not for your role")).to_be_visible()
        phone.goto(site.url + "/tokens")
        expect(phone.get_by_role("heading", name="My API tokens")).to_be_visible()
    finally:
        phone.context.close()


def test_a_marketer_removes_an_optout_with_a_reason(page: Page, site: Site) -> None:
    now = datetime.now(UTC)
    with app_of(site) as app:
        catalogue = app._store.catalogue
        for i, (sender, phone) in enumerate(
            [
                ("+15005550006", "+12125550101"),
                ("+15005550006", "+12125550102"),
                ("My Shop", "+12125550101"),
                ("My Shop", "+447911123456"),
            ]
        ):
            catalogue.add_optout(
                OptOut(
                    sender,
                    phone,
                    now - timedelta(days=9 - i),
                    run_id=3 + i,
                    message="Attempt to send to unsubscribed recipient",
                )
            )
        app.optouts.remove("+447911123456", "My Shop", reason="recorded by mistake", by="ada")
    sign_in(page, site, ("max", "staple battery horse"))
    page.get_by_role("link", name="Opt-outs").click()
    expect(page.get_by_text("3 opt-outs")).to_be_visible()

    page.get_by_label("Phone").fill("(212) 555-0101")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("2 opt-outs")).to_be_visible()
    page.get_by_role("link", name="Remove the opt-out of +12125550101 from My Shop").click()
    page.get_by_role("button", name="Remove opt-out").click()  # no reason yet: the browser asks
    expect(page).to_have_url(f"{site.url}/optouts/remove?phone=%2B12125550101&sender=My%20Shop")
    page.get_by_label("Reason").fill("replied START on 3 May")
    page.get_by_role("button", name="Remove opt-out").click()

    expect(page.get_by_text("The opt-out was removed")).to_be_visible()
    removals = page.locator("section.removals")
    expect(removals.get_by_text("replied START on 3 May")).to_be_visible()
    expect(removals.get_by_text("recorded by mistake")).to_be_visible()
    expect(page.get_by_text("2 opt-outs")).to_be_visible()
    page.screenshot(path=str(SHOTS / "optouts.png"), full_page=True)


def test_the_api_documentation_is_a_page_of_its_own(page: Page, site: Site) -> None:
    sign_in(page, site, ADMIN)
    page.goto(site.url + "/docs")

    expect(page.get_by_role("heading", name="API documentation")).to_be_visible()
    expect(page.get_by_role("link", name="OpenAPI document (JSON)")).to_have_attribute(
        "href", "/openapi.json"
    )
    toc = page.get_by_role("navigation", name="Operations")
    toc.get_by_role("link", name="DELETE /api/tokens/{token_id}").click()
    operation = page.locator("#delete-api-tokens-token_id")
    expect(operation.get_by_text("Revoke an API token")).to_be_visible()
    expect(operation.get_by_role("cell", name="token_id *", exact=True)).to_be_visible()
    page.locator("#post-api-tokens").get_by_role("link", name="TokenCreated").first.click()
    created = page.locator("#schema-TokenCreated")
    expect(created.get_by_role("cell", name="token *", exact=True)).to_be_visible()
    page.screenshot(path=str(SHOTS / "api-docs.png"), full_page=True)
