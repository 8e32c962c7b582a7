"""Twilio's request signature, for checking status callbacks that claim to come from Twilio.

When a message is sent with a `StatusCallback`, Twilio POSTs its status changes to that URL
with a header `X-Twilio-Signature`: base64(HMAC-SHA1(key=auth token, msg=the full URL
followed by every POST parameter's name and value, names sorted)). Anyone can POST to a
public URL, so a receiver that updates delivery statuses must recompute the signature and
reject a request whose header does not match; otherwise a stranger could mark messages
delivered (or failed) at will.

`is_valid_signature` behaves like the official SDK's
`twilio.request_validator.RequestValidator.validate` for form parameters, so smslink needs
no SDK at run time and its tests can hold the two side by side:
- the URL is the one Twilio requested, exactly as configured in `StatusCallback`; because
  Twilio has signed it both with and without a port over the years, the signature is
  accepted for the URL with any port removed or with the scheme's default port (443 for
  https, 80 for http) added, as the SDK does;
- parameter names are sorted (by code point, as Python sorts strings); a name given several
  times (a multidict with `getall`, e.g. aiohttp's `request.post()`, or one with `getlist`,
  e.g. Django's QueryDict) contributes each distinct value once, values sorted: the SDK's
  rule. As a convenience a plain mapping may also hold a list or tuple of values;
- the comparison takes constant time, so the check leaks nothing about the expected value.

JSON webhooks (signed over a `bodySHA256` query parameter) are not used for Messaging status
callbacks and are not handled here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import ParseResult, urlparse

SIGNATURE_HEADER = "X-Twilio-Signature"

#: Form parameters: a str -> str mapping, or a multidict (getall / getlist) for repeated names.
Params = Mapping[str, Any]


def compute_signature(auth_token: str, url: str, params: Params | None = None) -> str:
    """The X-Twilio-Signature Twilio sends when it POSTs `params` to `url` (URL used as is)."""
    parts = [url]
    if params:
        for name in sorted(set(params)):
            parts.extend(name + value for value in sorted(set(_values(params, name))))
    digest = hmac.new(auth_token.encode(), "".join(parts).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def is_valid_signature(auth_token: str, url: str, params: Params | None, signature: str) -> bool:
    """True when `signature` (the X-Twilio-Signature header) signs this request to `url`.

    `url` is the full URL the request was made to, query string included; an unparsable URL
    (say, a port that is not a number) is simply not valid.
    """
    try:
        parsed = urlparse(url)
        candidates = (_without_port(parsed), _with_default_port(parsed))
    except ValueError:
        return False
    given = signature.encode()
    valid = False
    for candidate in candidates:
        # Both candidates are always compared, so timing does not tell which one matched.
        expected = compute_signature(auth_token, candidate, params).encode()
        valid |= hmac.compare_digest(expected, given)
    return valid


def _values(params: Params, name: str) -> Iterable[str]:
    """Every value of `name`, however the mapping holds repeated names."""
    for method in ("getall", "getlist"):
        getter = getattr(params, method, None)
        if callable(getter):
            return getter(name)
    value = params[name]
    return [value] if isinstance(value, str) else value


def _without_port(parsed: ParseResult) -> str:
    """The URL with any explicit port removed (what the SDK's remove_port does).

    `parsed.port` raises ValueError for a port out of range or not a number.
    """
    if not parsed.port:
        return parsed.geturl()
    host = parsed.netloc.rsplit(":", 1)[0]
    return parsed._replace(netloc=host).geturl()


def _with_default_port(parsed: ParseResult) -> str:
    """The URL with the scheme's default port when it names none (the SDK's add_port)."""
    if parsed.port:
        return parsed.geturl()
    port = 443 if parsed.scheme == "https" else 80  # as the SDK: any other scheme gets 80
    return parsed._replace(netloc=f"{parsed.netloc}:{port}").geturl()
