"""The pages speak German as well as English: every page string is marked for translation,
and the German catalogue translates every one of them, with the original guide's words
where it names them. `make lint` and `make test` run these checks."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from jinja2 import Environment

ROOT = Path(__file__).parents[2]
WEB = ROOT / "src" / "smslink" / "web"
TEMPLATES = WEB / "templates"
CATALOGUE = WEB / "locale" / "de" / "LC_MESSAGES" / "messages.po"
#: The layers below the web whose sentences (`say(...)`) reach the pages and the API.
SAYING_LAYERS = ("domain", "app", "engine", "store")
#: Words shown as they are in every language.
UNTRANSLATED = {"smslink", "SID", "URL", "CSV", "API", "JSON", "SVG", "EN", "DE", "MG", "SK", "AC"}
#: Attributes people read (or hear, with a screen reader).
READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-confirm", "value"}
_WORD = re.compile(r"[^\W\d_]{2,}")
_PLACEHOLDERS = re.compile(r"%\((\w+)\)s")


class _Text(HTMLParser):
    """The text and readable attributes of a template's literal HTML. An element marked
    `translate="no"` (HTML's own attribute: a command line, say) is left out; so is the
    `value` of a button, which nobody sees (an `<input type=submit>` shows its value)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self._skipping or tag in ("script", "style") or attributes.get("translate") == "no":
            self._skipping.append(tag)
            return
        shown_value = tag == "input" and attributes.get("type") in ("submit", "button", "reset")
        for name, value in attrs:
            if name == "value" and not shown_value:
                continue
            if name in READ_ATTRIBUTES and value:
                self.found.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.found.append(data)


def _literal_text(template: Path) -> list[str]:
    """What a template shows as written (outside `{{ }}` and `{% %}`), as people read it."""
    literal = "".join(
        value
        for _, kind, value in Environment(extensions=["jinja2.ext.i18n"]).lex(
            template.read_text(encoding="utf-8")
        )
        if kind == "data"
    )
    parser = _Text()
    parser.feed(literal)
    return [text.strip() for text in parser.found if text.strip()]


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_every_string_a_page_shows_is_marked_for_translation(template: Path) -> None:
    unmarked = [
        text
        for text in _literal_text(template)
        if any(word not in UNTRANSLATED for word in _WORD.findall(text))
    ]

    assert unmarked == [], f"wrap these in {{{{ _('…') }}}}: {unmarked}"


def test_the_check_finds_text_that_is_not_marked(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        '<h1>{{ _("Runs") }}</h1><p>Nothing yet</p><input placeholder="Search" value="{{ v }}">'
        "<span title=\"{{ _('x') }}\">smslink</span><button value=\"save\">{{ _('Save') }}</button>"
        '<input type="submit" value="Go"><pre translate="no">curl <b>-H</b> x</pre><p>Left</p>',
        encoding="utf-8",
    )

    assert _literal_text(page) == ["Nothing yet", "Search", "smslink", "Go", "Left"]


def _messages() -> dict[str, str]:
    """Every message the pages use (templates, the web face's Python, and the sentences the
    domain and application say), as extracted."""
    method_map = [
        ("src/smslink/web/templates/**.html", "jinja2"),
        ("src/smslink/web/**.py", "python"),
        *((f"src/smslink/{layer}/**.py", "python") for layer in SAYING_LAYERS),
    ]
    options = {
        "src/smslink/web/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}
    }
    found: dict[str, str] = {}
    keywords = {**DEFAULT_KEYWORDS, "say": None}
    for filename, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map=options, keywords=keywords
    ):
        msgid = message if isinstance(message, str) else message[0]
        found.setdefault(msgid, filename)
    return found


def test_every_page_string_has_a_german_translation() -> None:
    with CATALOGUE.open("rb") as file:
        catalogue = read_po(file, locale="de")
    assert not catalogue.fuzzy, "a fuzzy catalogue is not compiled: clear the header's flag"
    missing: list[str] = []
    broken: list[str] = []
    for msgid, where in sorted(_messages().items()):
        entry = catalogue.get(msgid)
        german = entry.string if entry is not None else ""
        german = german if isinstance(german, str) else (german[0] if german else "")
        if entry is None or not german or entry.fuzzy:
            missing.append(f"{where}: {msgid!r}")
        elif set(_PLACEHOLDERS.findall(msgid)) != set(_PLACEHOLDERS.findall(german)):
            broken.append(f"{msgid!r} -> {german!r}")

    assert missing == [], "run `make messages`, then translate in messages.po:\n" + "\n".join(
        missing
    )
    assert broken == [], "placeholders differ:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("english", "german"),
    [
        ("Connection", "Verbindung"),
        ("Base URL", "Basis URL"),
        ("Account SID", "Account SID"),
        ("Auth Token", "Auth Token"),
        ("From number", "Von-Nummer"),
        ("Retry interval (ms)", "Wiederholungsintervall (ms)"),
        ("Retry attempts", "Wiederholungsversuche"),
        ("Test", "Test"),
    ],
)
def test_german_labels_follow_the_original_guide(english: str, german: str) -> None:
    with CATALOGUE.open("rb") as file:
        catalogue = read_po(file, locale="de")
    entry = catalogue.get(english)

    assert entry is not None and entry.string == german
