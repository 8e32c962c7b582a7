"""A marketer in a real browser runs the wizard: the message is counted live as it is typed
(an emoji turns one GSM-7 segment into UCS-2 segments and is highlighted), a sample
audience fills the mapping choices, Save shows the touchpoint; then copy and delete from
the list. Screenshots land in docs/screenshots/."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.web.site import MARKETER, SHOTS, Site
from tests.web.test_browser_connections import sign_in
from tests.web.test_touchpoints import add_connection

#: 92 characters: one GSM-7 segment; with " 🎉", 95 UTF-16 units: two UCS-2 segments.
MESSAGE = (
    "Hi <FirstName>, your order ships to <City> today. Show this text at the counter for 10% off."
)
SAMPLE = b"Mobile,First Name,Town\n+12125550101,Ada,Berlin\n+12125550102,Max,Paris\n"


def _fits_the_width(page: Page) -> bool:
    """Nothing sticks out sideways (the page does not scroll horizontally)."""
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def test_the_wizard_counts_live_reads_a_sample_and_saves(
    page: Page, site: Site, simulator: str
) -> None:
    add_connection(site, simulator)
    problems: list[str] = []  # script errors, refused inline code (CSP), failed requests
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    sign_in(page, site, MARKETER)
    page.get_by_role("link", name="Touchpoints").click()
    expect(page.get_by_text("No touchpoint yet")).to_be_visible()
    page.get_by_role("link", name="New touchpoint").click()

    page.get_by_label("Name").fill("welcome")
    expect(page.get_by_label("Connection")).to_have_value("sim")
    page.get_by_role("textbox", name="Message").fill(MESSAGE)
    info = page.locator("[data-info]")
    expect(info.locator('[data-slot="placeholders"] li')).to_have_text(["<FirstName>", "<City>"])
    expect(info.locator('[data-slot="encoding"]')).to_have_text("GSM-7")
    expect(info.locator('[data-slot="segments"]')).to_have_text("1")
    expect(info.locator('[data-slot="ucs2"]')).to_be_hidden()

    page.get_by_role("textbox", name="Message").press_sequentially(" 🎉")

    expect(info.locator('[data-slot="encoding"]')).to_have_text("UCS-2")
    expect(info.locator('[data-slot="segments"]')).to_have_text("2")
    expect(info.locator('[data-slot="marked"] mark')).to_have_text("🎉")
    expect(info.locator('[data-slot="forcing"]')).to_contain_text("U+1F389")
    page.screenshot(path=str(SHOTS / "wizard-message.png"), full_page=True)

    page.get_by_role("textbox", name="Message").press_sequentially(" <A> <B> <C> <D>")
    expect(page.locator("#e-message")).to_contain_text("at most 5 are allowed")
    for _ in range(len(" <A> <B> <C> <D>")):
        page.get_by_role("textbox", name="Message").press("Backspace")
    expect(page.locator("#e-message")).to_be_hidden()

    page.get_by_role("button", name="Next: field mapping").click()
    expect(page.get_by_role("heading", name="Field mapping")).to_be_visible()
    page.get_by_label("Audience file").set_input_files(
        files=[{"name": "audience.csv", "mimeType": "text/csv", "buffer": SAMPLE}]
    )
    expect(page.get_by_text("Columns read from audience.csv")).to_be_visible()
    expect(page.locator("datalist#columns option")).to_have_count(3)
    expect(page.get_by_label("Phone number")).to_have_value("Mobile")  # named like a phone
    expect(page.get_by_label("<FirstName>")).to_have_value("First Name")
    expect(page.get_by_label("<City>")).to_have_value("")
    page.get_by_label("<City>").fill("Town")
    page.screenshot(path=str(SHOTS / "wizard-mapping.png"), full_page=True)

    page.get_by_role("button", name="Save touchpoint").click()

    expect(page).to_have_url(site.url + "/touchpoints/welcome?added=1")
    expect(page.get_by_text("The touchpoint is saved")).to_be_visible()
    expect(page.get_by_role("row", name="<City> Town")).to_be_visible()
    expect(page.get_by_role("link", name="Start a run")).to_have_attribute(
        "href", "/runs/new?touchpoint=welcome"
    )
    page.screenshot(path=str(SHOTS / "touchpoint.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    assert _fits_the_width(page)
    assert problems == []


def test_copy_and_delete_from_the_list(page: Page, site: Site, simulator: str) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    for name, message in (("welcome", MESSAGE), ("reminder", "Your appointment is tomorrow.")):
        saved = site.post(
            s,
            "/touchpoints/new",
            {
                "step": "save",
                "name": name,
                "connection": "sim",
                "message": message,
                "phone_column": "Mobile",
                "mapping.FirstName": "First Name",
                "mapping.City": "Town",
            },
            "/touchpoints/new",
        )
        assert saved.status_code == 303, saved.text
    sign_in(page, site, MARKETER)
    page.goto(site.url + "/touchpoints")
    page.get_by_role("row", name="welcome").get_by_role("link", name="Copy").click()
    page.get_by_label("Name of the copy").fill("welcome again")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("This is the copy")).to_be_visible()
    expect(page.get_by_role("row", name="<City> Town")).to_be_visible()

    page.get_by_role("link", name="Touchpoints").click()
    expect(page.locator("table.touchpoints tbody tr")).to_have_count(3)
    page.screenshot(path=str(SHOTS / "touchpoints.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete reminder").click()
    expect(page.locator("table.touchpoints tbody tr")).to_have_count(3)  # asked, and said no
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete reminder").click()

    expect(page.get_by_text("The touchpoint was deleted")).to_be_visible()
    expect(page.locator("table.touchpoints tbody tr")).to_have_count(2)
    page.set_viewport_size({"width": 375, "height": 800})
    assert _fits_the_width(page)
