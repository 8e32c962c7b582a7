"""The Messages list endpoint's query string and page object.

Accepts exactly what clients send: the SDK encodes `date_sent_after`/`date_sent_before`
as the keys `DateSent>`/`DateSent<` (which is also how a literal `DateSent>=2024-01-01`
in a URL parses), with a `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` value.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from smslink.simulator import errors
from smslink.simulator.resources import ROOT
from smslink.simulator.state import ListFilter, SentWindow

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_DAY = 86_400
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Accepted spellings of the date filters -> the canonical key echoed back in page URIs.
_DATE_KEYS = {
    "DateSent": "DateSent",
    "DateSent<": "DateSent<",
    "DateSent<=": "DateSent<",
    "DateSent>": "DateSent>",
    "DateSent>=": "DateSent>",
}


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed list request: what to match, which page, and how to link its neighbours."""

    filter: ListFilter
    echo: tuple[tuple[str, str], ...]  # the filters as they go back into page URIs
    page_size: int
    page: int
    after: str | None  # PA token: the page starts just older than this sid
    before: str | None  # PB token: the page ends just newer than this sid
    token: str | None  # the raw PageToken, for this page's own uri


def _parse_int(query: Mapping[str, str], key: str, default: int) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f"Invalid {key}: {raw}") from None


def _parse_moment(key: str, raw: str) -> tuple[bool, int]:
    """(is_whole_day, epoch seconds) of a date filter value, in GMT."""
    value = raw.strip().lstrip("=")
    if _DAY_RE.match(value):
        try:
            day = datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise errors.bad_request(f"Invalid {key}: {raw}") from None
        return True, calendar.timegm(day.timetuple())
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise errors.bad_request(f"Invalid {key}: {raw}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return False, int(moment.timestamp())


def _sent_window(dates: list[tuple[str, str]]) -> SentWindow | None:
    """Bounds on date_sent: whole days are inclusive at both ends, as Twilio documents."""
    if not dates:
        return None
    lo: int | None = None
    hi: int | None = None
    for key, raw in dates:
        if key == "DateSent" and raw[:2] in ("<=", ">="):
            key, raw = "DateSent" + raw[0], raw[2:]
        whole_day, second = _parse_moment(key, raw)
        if key == "DateSent":
            day = second - second % _DAY
            lo = day if lo is None else max(lo, day)
            hi = day + _DAY if hi is None else min(hi, day + _DAY)
        elif key == "DateSent>":
            lo = second if lo is None else max(lo, second)
        else:
            end = second + (_DAY if whole_day else 1)
            hi = end if hi is None else min(hi, end)
    return SentWindow(lo, hi)


def parse_list_query(query: Mapping[str, str]) -> ListQuery:
    """Validate a list request's parameters the way Twilio does (20007 above 1000)."""
    page_size = _parse_int(query, "PageSize", DEFAULT_PAGE_SIZE)
    if page_size > MAX_PAGE_SIZE:
        raise errors.page_size_too_large()
    if page_size < 1:
        raise errors.bad_request(f"Invalid PageSize: {page_size}")
    page = _parse_int(query, "Page", 0)
    if page < 0:
        raise errors.bad_request(f"Invalid Page: {page}")
    token = query.get("PageToken") or None
    after = before = None
    if token is not None:
        if token.startswith("PA"):
            after = token[2:]
        elif token.startswith("PB"):
            before = token[2:]
        else:
            raise errors.bad_request(f"Invalid PageToken: {token}")
    to, sender = query.get("To") or None, query.get("From") or None
    echo = [(k, v) for k, v in (("To", to), ("From", sender)) if v is not None]
    dates = [(canon, query[k]) for k, canon in _DATE_KEYS.items() if query.get(k)]
    echo.extend(dates)
    return ListQuery(
        filter=ListFilter(to=to, sender=sender, sent=_sent_window(dates)),
        echo=tuple(echo),
        page_size=page_size,
        page=page,
        after=after,
        before=before,
        token=token,
    )


def _page_uri(account_sid: str, q: ListQuery, page: int, token: str | None) -> str:
    params: list[tuple[str, object]] = [*q.echo, ("PageSize", q.page_size), ("Page", page)]
    if token:
        params.append(("PageToken", token))
    return f"{ROOT}/Accounts/{account_sid}/Messages.json?{urlencode(params)}"


def page_json(
    account_sid: str, q: ListQuery, items: list[dict[str, object]], more: bool
) -> dict[str, object]:
    """The page object: `messages` plus exactly Twilio's eight paging keys.

    `more` means further matches exist past this page in its reading direction (older ones,
    or newer ones for a PB page).
    """
    has_older = bool(items) and (more or q.before is not None)
    has_newer = more if q.before is not None else q.page > 0
    next_uri = previous_uri = None
    if has_older:
        next_uri = _page_uri(account_sid, q, q.page + 1, "PA" + str(items[-1]["sid"]))
    if has_newer:
        token = "PB" + str(items[0]["sid"]) if items else None
        previous_uri = _page_uri(account_sid, q, max(q.page - 1, 0), token)
    start = q.page * q.page_size
    return {
        "end": start + max(len(items) - 1, 0),
        "first_page_uri": _page_uri(account_sid, q, 0, None),
        "messages": items,
        "next_page_uri": next_uri,
        "page": q.page,
        "page_size": q.page_size,
        "previous_page_uri": previous_uri,
        "start": start,
        "uri": _page_uri(account_sid, q, q.page, q.token),
    }
