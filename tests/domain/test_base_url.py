"""Twilio base URLs: https anywhere, plain http only to this machine, never user info."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smslink.domain.base_url import check_base_url, display_base_url, is_loopback_host

ACCEPTED = [
    ("https://api.twilio.com/2010-04-01", "https://api.twilio.com/2010-04-01"),
    ("https://api.twilio.com/2010-04-01/", "https://api.twilio.com/2010-04-01"),
    ("  https://api.twilio.com/2010-04-01 \n", "https://api.twilio.com/2010-04-01"),
    ("https://api.twilio.com", "https://api.twilio.com"),
    ("https://proxy.internal:8443/twilio", "https://proxy.internal:8443/twilio"),
    ("https://10.0.0.1/x", "https://10.0.0.1/x"),
    ("https://[2001:db8::1]:443/x", "https://[2001:db8::1]:443/x"),
    ("http://127.0.0.1:8080/2010-04-01", "http://127.0.0.1:8080/2010-04-01"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://127.9.8.7/x", "http://127.9.8.7/x"),
    ("http://localhost/x", "http://localhost/x"),
    ("http://LOCALHOST:80/x/", "http://LOCALHOST:80/x"),
    ("http://[::1]:9/x", "http://[::1]:9/x"),
    ("http://[::ffff:127.0.0.1]/x", "http://[::ffff:127.0.0.1]/x"),
]


@pytest.mark.parametrize(("given_url", "expected"), ACCEPTED)
def test_accepted(given_url: str, expected: str):
    assert check_base_url(given_url) == expected
    assert check_base_url(expected) == expected  # normalising twice changes nothing


REFUSED = [
    ("http://example.com/2010-04-01", "in clear"),
    ("http://api.twilio.com/2010-04-01", "in clear"),
    ("http://10.0.0.1/x", "in clear"),
    ("http://192.168.1.10:8080/x", "in clear"),
    ("http://0.0.0.0/x", "in clear"),
    ("http://[::]/x", "in clear"),
    ("http://[2001:db8::1]/x", "in clear"),
    ("http://[::ffff:10.0.0.1]/x", "in clear"),
    ("http://127.0.0.1.evil.com/x", "in clear"),
    ("http://localhost.evil.com/", "in clear"),
    ("http://evil.localhost/", "in clear"),
    ("http://127.1/x", "in clear"),
    ("https://user:pass@api.twilio.com/2010-04-01", "credentials"),
    ("https://user@api.twilio.com/2010-04-01", "credentials"),
    ("http://user:pass@127.0.0.1/x", "credentials"),
    ("https://:pass@api.twilio.com/", "credentials"),
    ("ftp://x", "must start with https://"),
    ("file:///etc/passwd", "must start with https://"),
    ("api.twilio.com/2010-04-01", "must start with https://"),
    ("https://", "has no host"),
    ("https:///2010-04-01", "has no host"),
    ("https://:443/x", "has no host"),
    ("", "empty"),
    ("   ", "empty"),
    ("https://api.twilio.com/2010-04-01?x=1", "query"),
    ("https://api.twilio.com/2010-04-01?", "query"),
    ("https://api.twilio.com/2010-04-01#frag", "fragment"),
    ("https://api.twilio.com/20 10-04-01", "spaces or control characters"),
    ("https://api.twilio.com/\t2010-04-01", "spaces or control characters"),
    ("https://api.twilio.com\x00/x", "spaces or control characters"),
    ("https://api.twilio.com/\u202e10-04-01", "spaces or control characters"),
    ("http://localhost\\@evil.com/", "credentials"),
    ("http://127.0.0.1\\.evil.com/", "backslash"),
    ("https://api.twilio.com:99999/x", "cannot be parsed"),
    ("https://api.twilio.com:http/x", "cannot be parsed"),
    ("http://[::1/x", "cannot be parsed"),
    ("https://%6c%6fcalhost/x", "invalid host name"),
    ("https://[not-an-ip]/x", "cannot be parsed"),
]


@pytest.mark.parametrize(("given_url", "reason"), REFUSED)
def test_refused(given_url: str, reason: str):
    with pytest.raises(ValueError, match="base URL") as caught:
        check_base_url(given_url)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://user:pass@api.twilio.com/2010-04-01", "pass"),
        ("https://ACme:s3cr3t-T0ken@api.twilio.com/2010-04-01", "s3cr3t"),
        ("http://me:s3cr3t@example.com/x", "s3cr3t"),  # refused for user info, not for http
        ("ftp://me:s3cr3t@x", "s3cr3t"),
        ("https://me:s3cr3t@x:99999/", "s3cr3t"),
    ],
)
def test_refused_user_info_never_shows_the_password(url: str, secret: str):
    with pytest.raises(ValueError, match="credentials") as caught:
        check_base_url(url)
    assert secret not in str(caught.value)


def test_messages_name_no_command_line_flag():
    for url, _ in REFUSED:
        with pytest.raises(ValueError) as caught:
            check_base_url(url)
        assert "--" not in str(caught.value)


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("https://user:pass@api.twilio.com/2010-04-01", "https://***@api.twilio.com/2010-04-01"),
        ("https://user@api.twilio.com/x", "https://***@api.twilio.com/x"),
        ("http://a:b@c@127.0.0.1:8080/x", "http://***@127.0.0.1:8080/x"),
        ("https:user:pass@host/x", "***@host/x"),
        ("user:pass@host/x", "***@host/x"),
        ("//user:pass@host", "//***@host"),
        ("https://api.twilio.com/2010-04-01", "https://api.twilio.com/2010-04-01"),
        ("https://api.twilio.com/x@y", "https://api.twilio.com/x@y"),  # "@" in the path
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_display_hides_user_info(stored: str, shown: str):
    assert display_base_url(stored) == shown


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("localhost.", False),
        ("128.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool):
    assert is_loopback_host(host) is loopback


# --- Properties --------------------------------------------------------------------------

_HOSTS = st.sampled_from(
    [
        "api.twilio.com", "example.com", "localhost", "LOCALHOST", "localhost.evil.com",
        "127.0.0.1", "127.0.0.1.evil.com", "10.0.0.1", "0.0.0.0", "[::1]", "[::]",
        "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]", "[2001:db8::1]", "", "%6c", "a\\b", "h st",
    ]
)  # fmt: skip
_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@st.composite
def _urls(draw: st.DrawFn) -> str:
    """URLs assembled from risky parts, and now and then free text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=40))
    scheme = draw(st.sampled_from(["https://", "http://", "HTTP://", "ftp://", "https:", ""]))
    user = draw(st.sampled_from(["", "user@", "user:pass@", ":pass@", "@"]) | _TEXT)
    host = draw(_HOSTS | _TEXT)
    port = draw(st.sampled_from(["", ":8080", ":", ":0", ":99999", ":x"]))
    path = draw(st.sampled_from(["", "/", "/2010-04-01", "/x/"]) | _TEXT.map("/{}".format))
    tail = draw(st.sampled_from(["", "", "?x=1", "#f", "?"]))
    return f"{scheme}{user}{host}{port}{path}{tail}"


@given(_urls())
def test_accepted_urls_are_https_or_loopback_and_carry_no_user_info(url: str):
    try:
        checked = check_base_url(url)
    except ValueError as error:
        if display_base_url(url) != url and len(url.strip()) > 3:  # user info: never echoed
            assert url.strip() not in str(error)
        return
    parts = urlsplit(checked)
    assert parts.hostname
    assert parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))
    assert "@" not in parts.netloc
    assert not parts.query and not parts.fragment and "?" not in checked and "#" not in checked
    assert checked == checked.strip() and not checked.endswith("/")
    assert check_base_url(checked) == checked


@given(_urls())
def test_display_hides_every_user_info(url: str):
    shown = display_base_url(url)
    assert display_base_url(shown) == shown  # nothing left to hide
    if "user:pass@" in url and url.index("user:pass@") < min(
        (url.find(c) for c in "?#" if c in url), default=len(url)
    ):
        assert ("pass@" in shown) == ("pass@" in url.partition("user:pass@")[2])
    if "@" not in url:
        assert shown == url
