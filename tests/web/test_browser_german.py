"""German and English in a real browser: a browser that asks for German (locale de-DE, so
Accept-Language: de-DE) gets every page in German. An administrator adds a connection and
presses Test against the simulator; a marketer runs the touchpoint wizard (Nachricht,
Weiter, Feldzuordnung, Speichern) and is told in German that a message may have at most
five placeholders; the same wizard in English proves that the language follows the
browser; a finished run names its statuses in German. Screenshots of the German pages land
in docs/screenshots/ (de-connection.png, de-wizard-message.png, de-wizard-mapping.png)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.conftest import TOKEN
from tests.web.site import ADMIN, MARKETER, SHOTS, Site
from tests.web.test_runs import audience, configure, simulator_with, start, wait_for_state
from tests.web.test_touchpoints import add_connection

TOO_MANY = "Hallo <Vorname> <Name> aus <Stadt>, <Strasse> <PLZ>: <Rabatt> nur heute."
MESSAGE = "Hallo <Vorname>, Ihre Bestellung geht heute nach <Stadt>."
SAMPLE = b"Mobil,Vorname,Ort\n+4915112345678,Ada,Berlin\n+4915112345679,Max,Paris\n"

#: What the pages say, in the language the browser asks for.
WORDS = {
    "de-DE": {
        "name": "Name",
        "password": "Passwort",
        "sign in": "Anmelden",
        "new touchpoint": "Neuer Touchpoint",
        "message": "Nachricht",
        "next": "Weiter: Feldzuordnung",
        "too many": "erlaubt sind höchstens 5",
        "mapping": "Feldzuordnung",
        "audience file": "Zielgruppendatei",
        "columns read": "Spalten aus audience.csv gelesen",
        "phone number": "Telefonnummer",
        "save": "Touchpoint speichern",
        "saved": "Der Touchpoint ist gespeichert",
        "start a run": "Lauf starten",
    },
    "en-US": {
        "name": "Name",
        "password": "Password",
        "sign in": "Sign in",
        "new touchpoint": "New touchpoint",
        "message": "Message",
        "next": "Next: field mapping",
        "too many": "at most 5 are allowed",
        "mapping": "Field mapping",
        "audience file": "Audience file",
        "columns read": "Columns read from audience.csv",
        "phone number": "Phone number",
        "save": "Save touchpoint",
        "saved": "The touchpoint is saved",
        "start a run": "Start a run",
    },
}


@pytest.fixture
def german(browser: Browser) -> Iterator[Page]:
    """A tab of a browser set to German: it sends Accept-Language: de-DE."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def tab_in(browser: Browser, lang: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=lang)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    return tab


def sign_in(page: Page, site: Site, who: tuple[str, str], lang: str = "de-DE") -> None:
    """Sign in by the words of the page in `lang`."""
    words = WORDS[lang]
    page.goto(site.url + "/signin")
    expect(page.locator("html")).to_have_attribute("lang", lang[:2])
    page.get_by_label(words["name"], exact=True).fill(who[0])
    page.get_by_label(words["password"], exact=True).fill(who[1])
    page.get_by_role("button", name=words["sign in"]).click()
    expect(page).to_have_url(site.url + "/runs")


def test_an_administrator_adds_and_tests_a_connection_in_german(
    german: Page, site: Site, simulator: str
) -> None:
    page = german
    sign_in(page, site, ADMIN)
    page.get_by_role("navigation", name="Hauptmenü").get_by_role(
        "link", name="Verbindungen"
    ).click()
    expect(page.get_by_text("Noch keine Verbindung")).to_be_visible()
    page.get_by_role("link", name="Erste Verbindung anlegen").click()
    expect(page.get_by_role("heading", name="Neue Verbindung")).to_be_visible()

    page.get_by_label("Verbindung", exact=True).fill("sim")
    page.get_by_label("Basis URL", exact=True).fill(simulator)
    page.get_by_label("Account SID").fill("AC" + "c1" * 16)
    page.get_by_label("Auth Token").fill(TOKEN)
    page.get_by_label("Von-Nummer").fill("+15005550006")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_text("Die Verbindung wurde angelegt.")).to_be_visible()

    page.get_by_role("button", name="Test", exact=True).click()

    result = page.locator("[data-test-result]")
    expect(result).to_contain_text(f"Erfolg: {simulator} antwortet; das Konto AC")
    expect(result).to_contain_text("ist aktiv.")
    page.screenshot(path=str(SHOTS / "de-connection.png"), full_page=True)

    page.get_by_label("Auth Token").fill("nicht das Token")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_text("Die Änderungen sind gespeichert.")).to_be_visible()
    page.get_by_role("button", name="Test", exact=True).click()
    expect(result).to_contain_text("Twilio lehnt ab: 20003")
    page.get_by_role("link", name="Alle Verbindungen").click()
    expect(page.locator("table")).to_contain_text("fehlgeschlagen")


@pytest.mark.parametrize("lang", ["de-DE", "en-US"])
def test_a_marketer_runs_the_wizard_in_the_browsers_language(
    browser: Browser, site: Site, simulator: str, lang: str
) -> None:
    words = WORDS[lang]
    add_connection(site, simulator)
    page = tab_in(browser, lang)
    try:
        sign_in(page, site, MARKETER, lang)
        page.get_by_role("link", name="Touchpoints").first.click()
        page.get_by_role("link", name=words["new touchpoint"]).click()
        expect(page.get_by_role("heading", name=words["new touchpoint"])).to_be_visible()

        page.get_by_label(words["name"], exact=True).fill("willkommen")
        message = page.get_by_role("textbox", name=words["message"])
        message.fill(TOO_MANY)
        page.get_by_role("button", name=words["next"]).click()

        expect(page.locator("#e-message")).to_contain_text(words["too many"])
        expect(message).to_have_attribute("aria-invalid", "true")

        message.fill(MESSAGE)
        info = page.locator("[data-info]")
        expect(info.locator('[data-slot="placeholders"] li')).to_have_text(["<Vorname>", "<Stadt>"])
        if lang == "de-DE":
            page.screenshot(path=str(SHOTS / "de-wizard-message.png"), full_page=True)
        page.get_by_role("button", name=words["next"]).click()

        expect(page.get_by_role("heading", name=words["mapping"], exact=True)).to_be_visible()
        page.get_by_label(words["audience file"]).set_input_files(
            files=[{"name": "audience.csv", "mimeType": "text/csv", "buffer": SAMPLE}]
        )
        expect(page.get_by_text(words["columns read"])).to_be_visible()
        expect(page.get_by_label(words["phone number"])).to_have_value("Mobil")
        expect(page.get_by_label("<Vorname>")).to_have_value("Vorname")
        page.get_by_label("<Stadt>").fill("Ort")
        if lang == "de-DE":
            page.screenshot(path=str(SHOTS / "de-wizard-mapping.png"), full_page=True)
        page.get_by_role("button", name=words["save"]).click()

        expect(page).to_have_url(site.url + "/touchpoints/willkommen?added=1")
        expect(page.get_by_text(words["saved"])).to_be_visible()
        expect(page.get_by_role("link", name=words["start a run"])).to_be_visible()
    finally:
        page.context.close()


def test_the_live_count_tells_the_placeholder_limit_in_german(
    german: Page, site: Site, simulator: str
) -> None:
    add_connection(site, simulator)
    sign_in(german, site, MARKETER)
    german.goto(site.url + "/touchpoints/new")

    german.get_by_role("textbox", name="Nachricht").fill(TOO_MANY)  # no Weiter: typed only

    expect(german.locator("#e-message")).to_be_visible()
    expect(german.locator("#e-message")).to_contain_text("erlaubt sind höchstens 5", timeout=3000)


def test_a_finished_run_names_its_statuses_in_german(german: Page, site: Site) -> None:
    with simulator_with(undelivered_share=0.3, failed_share=0.2) as simulator:
        configure(site, simulator)
        s = site.signed_in(MARKETER)
        run_id = start(site, s, audience(20, bad=lambda i: "n/a" if i == 3 else None))
        wait_for_state(site, s, run_id, "completed")
    sign_in(german, site, MARKETER)

    german.goto(f"{site.url}/runs/{run_id}")

    expect(german.locator('[data-bind="state"]')).to_have_text("Abgeschlossen")
    tiles = german.get_by_role("list", name="Ergebnisse nach Status")
    for word in ("Zugestellt", "Nicht zugestellt", "Fehlgeschlagen", "Fehler"):
        expect(tiles).to_contain_text(word)
    badges = german.locator(".recipients tbody .badge")
    expect(badges.first).to_be_visible()
    shown = set(badges.all_inner_texts())
    assert "Zugestellt" in shown and "Fehler" in shown, shown
    assert not shown & {"Delivered", "Undelivered", "Failed", "Error"}, shown
    options = german.get_by_label("Status", exact=True).locator("option").all_inner_texts()
    assert "Zugestellt" in options and "Delivered" not in options, options
    german.goto("about:blank")
