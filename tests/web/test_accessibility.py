"""Every page checked with axe-core in the real browser: no serious or critical violations,
signed out, as a marketer and as an administrator, in English and German.

One site per test worker holds everything the pages show (a connection to the simulator, a
touchpoint, a finished run, an upload waiting in its preview, opt-outs, a token), and one
signed-in browser context per language and role visits the pages one after another."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from smslink.domain.models import OptOut
from tests.web.site import ADMIN, MARKETER, Site, running_site
from tests.web.test_runs import audience, configure, simulator_with, start, upload, wait_for_state
from tests.web.test_users import app_of, create_token, user_named

LANGUAGES = ["en-US", "de-DE"]
_axe = Axe()


@dataclass
class Shop:
    """The site and the ids its pages need."""

    site: Site
    home: Path
    run_id: int = 0
    preview: str = ""
    marketer_id: int = 0
    contexts: dict[tuple[str, str], BrowserContext] = field(default_factory=dict)
    empty_site: Site | None = None  # a site without users: its /setup page


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    home = tmp_path_factory.mktemp("accessibility") / "home"
    home.mkdir(mode=0o700)
    with pytest.MonkeyPatch.context() as env:
        for name in ("SMSLINK_DATABASE_URL", "SMSLINK_SECRET_KEY", "TWILIO_AUTH_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("SMSLINK_HOME", str(home))
        with (
            simulator_with(undelivered_share=0.3, failed_share=0.2) as simulator,
            running_site(home) as site,
        ):
            shop = Shop(site, home)
            configure(site, simulator)
            s = site.signed_in(MARKETER)
            shop.run_id = start(site, s, audience(20))
            uploaded = upload(site, s, audience(5, bad=lambda i: "n/a" if i == 2 else None))
            assert uploaded.status_code == 303, uploaded.text
            shop.preview = uploaded.headers["location"]
            create_token(site, s)
            _optouts(site)
            shop.marketer_id = user_named(site, MARKETER[0]).id
            wait_for_state(site, s, shop.run_id, "completed")
            try:
                yield shop
            finally:
                for context in shop.contexts.values():
                    context.close()


def _optouts(site: Site) -> None:
    now = datetime.now(UTC)
    with app_of(site) as app:
        for i, phone in enumerate(["+12125550101", "+12125550102", "+447911123456"]):
            app._store.catalogue.add_optout(
                OptOut("+15005550006", phone, now - timedelta(days=3 - i), run_id=1)
            )
        app.optouts.remove("+447911123456", "+15005550006", reason="by mistake", by="ada")


@pytest.fixture(scope="module")
def empty_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A site nobody has signed up to yet: it offers /setup."""
    home = tmp_path_factory.mktemp("accessibility-empty") / "home"
    home.mkdir(mode=0o700)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SMSLINK_HOME", str(home))
        with running_site(home, users=False) as site:
            yield site


def _tab(browser: Browser, shop: Shop, who: tuple[str, str] | None, lang: str) -> Page:
    """The page of the (cached) context of `who` in `lang`, signed in once."""
    key = (lang, who[0] if who else "")
    if key not in shop.contexts:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=lang)
        context.set_default_timeout(10_000)
        tab = context.new_page()
        if who is not None:
            tab.goto(shop.site.url + "/signin")
            tab.locator("#name").fill(who[0])
            tab.locator("#password").fill(who[1])
            tab.locator("form[action='/signin'] button").click()
            tab.wait_for_url("**/runs")
        shop.contexts[key] = context
    return shop.contexts[key].pages[0]


# -- how to reach each page --------------------------------------------------------------------

Visit = Callable[[Page, Shop], None]


def path(template: str) -> Visit:
    def go(page: Page, shop: Shop) -> None:
        page.goto(shop.site.url + template.format(run=shop.run_id, user=shop.marketer_id))

    return go


def preview(page: Page, shop: Shop) -> None:
    page.goto(shop.site.url + shop.preview)


def run_page(page: Page, shop: Shop) -> None:
    page.goto(f"{shop.site.url}/runs/{shop.run_id}")
    expect(page.locator(".recipients tbody tr").first).to_be_visible()


def wrong_password(page: Page, shop: Shop) -> None:
    page.goto(shop.site.url + "/signin")
    page.locator("#name").fill("nobody")
    page.locator("#password").fill("wrong")
    page.locator("form[action='/signin'] button").click()
    expect(page.locator(".alert.error, [role=alert]").first).to_be_visible()


def message_with_problems(page: Page, shop: Shop) -> None:
    """The wizard's first step sent back with its problems beside the fields."""
    page.goto(shop.site.url + "/touchpoints/new")
    page.locator("#f-message").fill("<A> <B> <C> <D> <E> <F>")
    page.locator("button[name=step][value=next]").click()
    expect(page.locator("#e-name")).to_be_visible()


def mapping(page: Page, shop: Shop) -> None:
    """The wizard's second step (Field mapping), reached from the touchpoint's edit page."""
    page.goto(shop.site.url + "/touchpoints/spring/edit")
    page.locator("button[name=step][value=next]").click()
    expect(page.locator("button[name=step][value=save]")).to_be_visible()


def connection_form_with_problems(page: Page, shop: Shop) -> None:
    page.goto(shop.site.url + "/connections/new")
    page.locator("#f-name").fill("sim")  # taken
    page.locator("#f-base_url").fill("http://example.com")
    page.locator("form.grid-form button.primary").click()
    expect(page.locator(".field-error").first).to_be_visible()


def connection_tested(page: Page, shop: Shop) -> None:
    page.goto(shop.site.url + "/connections/sim")
    page.locator("[data-test-button]").click()
    expect(page.locator("[data-test-result] .alert")).to_be_visible()


def setup(page: Page, shop: Shop) -> None:
    assert shop.empty_site is not None
    page.goto(shop.empty_site.url + "/setup")
    expect(page.locator("form")).to_have_count(2)  # the language switch and the set-up


#: Every page, by who sees it; the name is the test's id.
PAGES: list[tuple[str, tuple[str, str] | None, Visit]] = [
    ("/signin", None, path("/signin")),
    ("/signin wrong password", None, wrong_password),
    ("/setup", None, setup),
    ("/runs", MARKETER, path("/runs")),
    ("/runs/new", MARKETER, path("/runs/new")),
    ("/runs/new/{upload}", MARKETER, preview),
    ("/runs/{run}", MARKETER, run_page),
    ("/runs/{run}/again", MARKETER, path("/runs/{run}/again")),
    ("/touchpoints", MARKETER, path("/touchpoints")),
    ("/touchpoints/new", MARKETER, path("/touchpoints/new")),
    ("/touchpoints/new problems", MARKETER, message_with_problems),
    ("/touchpoints/new mapping", MARKETER, mapping),
    ("/touchpoints/spring", MARKETER, path("/touchpoints/spring")),
    ("/touchpoints/spring/copy", MARKETER, path("/touchpoints/spring/copy")),
    ("/optouts", MARKETER, path("/optouts")),
    (
        "/optouts/remove",
        MARKETER,
        path("/optouts/remove?phone=%2B12125550101&sender=%2B15005550006"),
    ),
    ("/tokens", MARKETER, path("/tokens")),
    ("/docs", MARKETER, path("/docs")),
    ("/users not for marketers", MARKETER, path("/users")),
    ("not found", MARKETER, path("/runs/99999")),
    ("/connections", ADMIN, path("/connections")),
    ("/connections/new", ADMIN, path("/connections/new")),
    ("/connections/new problems", ADMIN, connection_form_with_problems),
    ("/connections/sim", ADMIN, path("/connections/sim")),
    ("/connections/sim tested", ADMIN, connection_tested),
    ("/users", ADMIN, path("/users")),
    ("/users/{marketer}", ADMIN, path("/users/{user}")),
]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(("name", "who", "visit"), PAGES, ids=[p[0] for p in PAGES])
def test_the_page_has_no_serious_accessibility_violations(
    browser: Browser,
    shop: Shop,
    request: pytest.FixtureRequest,
    lang: str,
    name: str,
    who: tuple[str, str] | None,
    visit: Visit,
) -> None:
    if name == "/setup":
        shop.empty_site = request.getfixturevalue("empty_site")
    page = _tab(browser, shop, who, lang)
    visit(page, shop)
    expected = lang.split("-")[0]
    assert page.locator("html").get_attribute("lang") == expected, page.url

    results = _axe.run(page)

    violations = [
        (v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert violations == [], page.url
