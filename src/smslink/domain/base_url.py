"""Which Twilio API base URLs a connection may use, and how to show one.

Every request carries the auth token in a Basic `Authorization` header, so the URL decides
who can read the token: over plain `http` anyone on the path can. `http` is therefore
accepted only for this machine (a simulator, a local proxy), where the request never
leaves the host. User info (`user:pass@`) is refused: the credentials go in the header, and
a password in the URL would be stored and shown with it. Queries and fragments are refused
because the client appends API paths to the base URL, and whitespace and control
characters because two URL parsers may read them differently.

A pure domain module: no I/O, no command-line words, so any front end can use it.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

from smslink.domain.errors import say

#: The one host name that is loopback by definition (RFC 6761); its subdomains are not
#: trusted, since resolvers other than the system's may send them anywhere.
_LOCALHOST = "localhost"

#: Characters a host name may hold (IDN labels are letters too); anything else (`%`, `\`,
#: `!`...) is a sign of a parser trick rather than a real host.
_HOST_PUNCTUATION = frozenset("-._")

#: Where user info would be: after `scheme:/` (any number of slashes, as lenient parsers
#: allow) or else from the start, up to the first `/`, `?` or `#`. Reading `user:pass@host`
#: as a scheme `user` would show the password, hence the scheme only when a slash follows.
_AUTHORITY = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*:/+|/*)(?P<authority>[^/?#]*)")


def check_base_url(url: str) -> str:
    """The URL normalised (surrounding whitespace and trailing `/` stripped), or ValueError
    saying what is wrong with it.

    Accepted: `https://host[:port][/path]`, and `http://` only to a loopback host
    (`localhost`, 127.0.0.0/8, `[::1]`, `[::ffff:127.x.x.x]`): plain http elsewhere would
    send the auth token in clear. Refused: user info, a missing host, whitespace or control
    characters, a query or fragment, a backslash, any other scheme.
    """
    url, host, scheme = _checked_shape(url)
    if scheme == "http" and not is_loopback_host(host):
        raise ValueError(
            say(
                "the base URL %(url)s uses plain http to another machine, which would send "
                "the auth token in clear: use https:// (http is accepted only for localhost, "
                "127.0.0.0/8 and [::1])",
                url=repr(url),
            )
        )
    return url.rstrip("/")


def check_callback_base_url(url: str) -> str:
    """Where Twilio reaches this smslink's web service for status callbacks, normalised as
    `check_base_url` does, or ValueError. The same shape rules (https, no user info, no
    query or fragment: smslink appends the path and Twilio's retry fragment itself); plain
    http only to this machine (tests, a simulator), since a callback carries phone numbers
    and statuses and Twilio recommends https for webhooks."""
    url, host, scheme = _checked_shape(url)
    if scheme == "http" and not is_loopback_host(host):
        raise ValueError(
            say(
                "the callback base URL %(url)s uses plain http to another machine, where "
                "anyone on the way could read every recipient's status: use https:// (http "
                "is accepted only for localhost, 127.0.0.0/8 and [::1])",
                url=repr(url),
            )
        )
    return url.rstrip("/")


def check_webhook_url(url: str) -> str:
    """Where a webhook subscription's events are posted, normalised as `check_base_url`
    does, or ValueError. The same shape rules; plain http only to this machine, since an
    event carries message details and anyone on the way could read or change them."""
    url, host, scheme = _checked_shape(url)
    if scheme == "http" and not is_loopback_host(host):
        raise ValueError(
            say(
                "the webhook URL %(url)s uses plain http to another machine, where anyone on "
                "the way could read every event: use https:// (http is accepted only for "
                "localhost, 127.0.0.0/8 and [::1])",
                url=repr(url),
            )
        )
    return url.rstrip("/")


def _checked_shape(url: str) -> tuple[str, str, str]:
    """The URL stripped, its host and scheme, once every rule but the http one holds."""
    url = url.strip()
    if not url:
        raise ValueError(say("the base URL is empty"))
    if any(_is_invisible(c) for c in url):
        raise ValueError(say("the base URL contains spaces or control characters"))
    if _has_user_info(url):
        # Checked first, and the URL never echoed: the part before "@" may be a password.
        raise ValueError(
            say(
                "the base URL must not carry credentials before its host (user info, ending "
                "in '@'): they are sent separately, in a header; remove everything up to the '@'"
            )
        )
    if "\\" in url:
        raise ValueError(say("the base URL contains a backslash"))
    try:
        parts = urlsplit(url)
        _ = parts.port  # parses it: ValueError for a non-numeric or out-of-range port
    except ValueError as e:
        raise ValueError(
            say("the base URL %(url)s cannot be parsed (%(reason)s)", url=repr(url), reason=e)
        ) from e
    if parts.scheme not in ("https", "http"):
        raise ValueError(say("the base URL %(url)s must start with https://", url=repr(url)))
    if "?" in url or "#" in url:
        raise ValueError(
            say(
                "the base URL must not have a query (?...) or fragment (#...): "
                "API paths are appended to it"
            )
        )
    host = parts.hostname
    if not host:
        raise ValueError(say("the base URL %(url)s has no host", url=repr(url)))
    _check_host(parts.netloc, host, url)
    return url, host, parts.scheme


def is_loopback_host(host: str) -> bool:
    """Whether `host` (as `urlsplit(...).hostname` gives it: lower case, no brackets) names
    this machine: `localhost`, an address in 127.0.0.0/8, `::1`, or an IPv4-mapped IPv6
    loopback address. Only literal addresses and the exact name, no DNS: `127.0.0.1.evil.com`
    and `localhost.evil.com` are other machines."""
    if host == _LOCALHOST:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def display_base_url(url: str) -> str:
    """The URL with any user info replaced by `***@`: safe to show even for a URL stored
    before user info was refused. Never raises, even for a URL `check_base_url` refuses."""
    if not _has_user_info(url):
        return url
    match = _AUTHORITY.match(url)
    assert match is not None  # the pattern matches any string
    return f"{match['head']}***@{match['authority'].rpartition('@')[2]}{url[match.end() :]}"


def _has_user_info(url: str) -> bool:
    match = _AUTHORITY.match(url)
    return match is not None and "@" in match["authority"]


def _check_host(netloc: str, host: str, url: str) -> None:
    """A bracketed host must be an IPv6 address; any other host only letters, digits and
    `-._` (no `%`-escapes, no punctuation another parser could read differently)."""
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError as e:
            raise ValueError(
                say("the base URL %(url)s has an invalid IPv6 address in brackets", url=repr(url))
            ) from e
        return
    if not all(c.isalnum() or c in _HOST_PUNCTUATION for c in host):
        raise ValueError(
            say(
                "the base URL %(url)s has an invalid host name %(host)s",
                url=repr(url),
                host=repr(host),
            )
        )


def _is_invisible(char: str) -> bool:
    """Whitespace, and control, format (e.g. bidi overrides) and unassigned characters."""
    return char.isspace() or unicodedata.category(char).startswith("C")
