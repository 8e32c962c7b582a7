"""The pages' languages: gettext catalogues through Babel, chosen per request.

Every string a page shows is marked for translation in the templates (`{% trans %}`,
`_()`) or in the face's Python (`_()` below), and the catalogues under `locale/` are
compiled by `make` (`pybabel compile`). The language comes from the user's setting, else
the browser's `Accept-Language`, else English. Numbers, dates and times are formatted for
the language by Babel, and times are shown in the user's time zone.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from smslink.domain.errors import Sentence

LOCALE_DIR = Path(__file__).parent / "locale"
#: The languages the pages speak, the first being the one used when nothing matches.
LANGUAGES = ("en", "de")
DEFAULT_LANGUAGE = LANGUAGES[0]

_current: ContextVar[str] = ContextVar("smslink_language", default=DEFAULT_LANGUAGE)


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of `language` (English needs none: it is the source)."""
    if language == DEFAULT_LANGUAGE:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [language], domain="messages")


def negotiate(preferred: str | None, accept_language: str | None) -> str:
    """The user's language when set and spoken, else the browser's best match, else English."""
    if preferred in LANGUAGES:
        return str(preferred)
    for tag in _accepted(accept_language or ""):
        base = tag.split("-")[0].split("_")[0].lower()
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


def _accepted(header: str) -> list[str]:
    """Accept-Language's tags, best first (q=0 excluded)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            ranked.append((-weight, index, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def use(language: str) -> None:
    """Speak `language` for the rest of this request (a context variable)."""
    _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def current() -> str:
    return _current.get()


def _(message: str, **values: object) -> str:
    """`message` in the current language, with `%(name)s` values filled in."""
    text = translations(current()).ugettext(message)
    return text % values if values else text


def translated(text: object) -> str:
    """A message from the layers below in the current language: a `Sentence` (the domain's
    and application's problems) is looked up by its English key and filled with its values
    (themselves translated, numbers written as the language writes them); anything else is
    shown as it is."""
    if not isinstance(text, Sentence):
        return str(text)
    values = {name: _value(value) for name, value in text.params.items()}
    return translations(current()).ugettext(text.key) % values if values else _(text.key)


def error_message(error: BaseException) -> str:
    """An error's message in the current language: its sentence translated, or, when the
    message is the problems' own joined together, each problem's sentence translated."""
    if not error.args:
        return str(error)
    first = error.args[0]
    problems = getattr(error, "problems", ())
    if problems and str(first) == "; ".join(str(p.message) for p in problems):
        return "; ".join(translated(p.message) for p in problems)
    return translated(first)


def _value(value: object) -> str:
    if isinstance(value, Sentence):
        return translated(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return number(value)
    return str(value)


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    text = translations(current()).ungettext(singular, plural, n)
    return text % {"num": n, **values}


def number(value: float | int, *, digits: int | None = None) -> str:
    """A number as the current language writes it (1,234.5 / 1.234,5)."""
    if digits is None:
        pattern = None  # the language's own pattern
    elif digits:
        pattern = "#,##0." + "0" * digits
    else:
        pattern = "#,##0"
    return str(format_decimal(value, format=pattern, locale=_locale(current())))


def file_size(size: int) -> str:
    """A size in KB, MB or GB of 1,024 (so the default limit reads "200 MB")."""
    if size < 1024:
        return _("%(n)s bytes", n=number(size))
    for unit, scale in (("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30)):
        if size < scale * 1024 or unit == "GB":
            value = size / scale
            return f"{number(value, digits=0 if value == int(value) else 1)} {unit}"
    return str(size)  # pragma: no cover


def moment(value: datetime | None, time_zone: str | None = None) -> str:
    """A date and time in the user's time zone (UTC when none), as the language writes it."""
    if value is None:
        return ""
    zone = _zone(time_zone)
    return str(
        format_datetime(value.astimezone(zone), "medium", tzinfo=zone, locale=_locale(current()))
    )


def utc(value: datetime | None) -> str:
    """The same moment in UTC, ISO 8601: what a title attribute shows on hover."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@cache
def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LANGUAGE)


def _zone(name: str | None) -> ZoneInfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")
