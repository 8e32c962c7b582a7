"""Every page checked with axe-core in the real browser: no serious or critical violations,
signed out, as a marketer and as an administrator, in English and German."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser

from tests.web.site import ADMIN, MARKETER, Site

#: Pages by who sees them; ids in paths come from the set-up below.
SIGNED_OUT = ["/signin"]
MARKETER_PAGES = ["/runs"]
ADMIN_PAGES = ["/connections", "/connections/new"]

_axe = Axe()


def _violations(browser: Browser, site: Site, who: tuple[str, str] | None, path: str, lang: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=lang)
    page = context.new_page()
    try:
        if who is not None:
            page.goto(site.url + "/signin")
            page.locator("#name").fill(who[0])
            page.locator("#password").fill(who[1])
            page.locator("form[action='/signin'] button").click()
            page.wait_for_url("**/runs")
        page.goto(site.url + path)
        results = _axe.run(page)
        return [
            (v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["en-US", "de-DE"])
def test_pages_have_no_serious_accessibility_violations(
    browser: Browser, site: Site, lang: str
) -> None:
    found = {}
    for who, paths in ((None, SIGNED_OUT), (MARKETER, MARKETER_PAGES), (ADMIN, ADMIN_PAGES)):
        for path in paths:
            violations = _violations(browser, site, who, path, lang)
            if violations:
                found[path] = violations

    assert found == {}
