"""smslink's X-Twilio-Signature check against the official SDK's RequestValidator.

The SDK is the reference: on the documented test vector and on generated tokens, URLs and
parameters (unicode included) both must compute the same signature, accept the same
requests and reject the same tampered ones.
"""

from __future__ import annotations

import string
from urllib.parse import urlencode

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from smslink.twilio import compute_signature, is_valid_signature

VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_documented_test_vector() -> None:
    assert compute_signature(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS) == VECTOR_SIGNATURE
    assert is_valid_signature(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)
    sdk = RequestValidator(VECTOR_TOKEN)
    assert sdk.validate(VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)


def test_vector_is_accepted_with_the_default_port_and_not_another() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert is_valid_signature(VECTOR_TOKEN, with_port, VECTOR_PARAMS, VECTOR_SIGNATURE)
    # The signature covers the path and query and each parameter.
    assert not is_valid_signature(
        VECTOR_TOKEN, VECTOR_URL + "&baz=3", VECTOR_PARAMS, VECTOR_SIGNATURE
    )
    assert not is_valid_signature(
        VECTOR_TOKEN, VECTOR_URL, {**VECTOR_PARAMS, "Digits": "1235"}, VECTOR_SIGNATURE
    )
    assert not is_valid_signature("54321", VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)


def test_unparsable_url_is_invalid_rather_than_an_error() -> None:
    assert not is_valid_signature("t", "https://example.com:99999/x", {}, "abc=")
    assert not is_valid_signature("t", "https://example.com:port/x", {}, "abc=")


def test_non_ascii_signature_is_rejected_not_raised() -> None:
    assert not is_valid_signature(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS, "ßignature")


def test_url_is_normalised_as_the_sdk_does_it() -> None:
    """Both check the URL as urlparse rebuilds it, so a bare trailing '?' is not signed:
    a signature over 'https://a.example/x?' passes only for the URL without it."""
    url = "https://a.example/x?"
    signature = compute_signature("t", url, {})
    assert not RequestValidator("t").validate(url, {}, signature)
    assert not is_valid_signature("t", url, {}, signature)
    bare = compute_signature("t", url.rstrip("?"), {})
    assert RequestValidator("t").validate(url, {}, bare)
    assert is_valid_signature("t", url, {}, bare)


# --- generated inputs ---------------------------------------------------------------------

tokens = st.text(min_size=1, max_size=40)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,12}(\.[a-z]{2,6}){1,2}", fullmatch=True)
ports = st.one_of(st.none(), st.sampled_from([80, 443]), st.integers(0, 65535))
_PATH_CHARS = string.ascii_letters + string.digits + "-._~%"
paths = st.lists(st.text(_PATH_CHARS, min_size=1, max_size=8), max_size=4).map(
    lambda segments: "/" + "/".join(segments)
)
queries = st.one_of(
    st.none(),
    st.dictionaries(
        st.text(min_size=1, max_size=8), st.text(max_size=8), min_size=1, max_size=3
    ).map(urlencode),
)
#: Form parameters as Twilio sends them: names and values are any text, unicode included.
form = st.dictionaries(st.text(max_size=16), st.text(max_size=32), max_size=10)


@st.composite
def urls(draw: st.DrawFn, with_port: bool = True) -> str:
    """An http(s) URL with or without an explicit port (never with with_port=False) and
    query string."""
    scheme = draw(st.sampled_from(["https", "http"]))
    chosen = draw(ports) if with_port else None
    netloc = draw(hosts) + ("" if chosen is None else f":{chosen}")
    query = draw(queries)
    return f"{scheme}://{netloc}{draw(paths)}" + ("" if query is None else f"?{query}")


@settings(max_examples=200)
@given(tokens, urls(), form)
def test_same_signature_as_the_sdk(token: str, url: str, params: dict[str, str]) -> None:
    ours = compute_signature(token, url, params)
    assert ours == RequestValidator(token).compute_signature(url, params)
    assert is_valid_signature(token, url, params, ours)
    assert RequestValidator(token).validate(url, params, ours)


@settings(max_examples=200)
@given(tokens, form, st.data())
def test_same_verdict_as_the_sdk_across_port_variants(
    token: str, params: dict[str, str], data: st.DataObject
) -> None:
    """Signed for one spelling of the URL's port, checked against another: both agree."""
    scheme = data.draw(st.sampled_from(["https", "http"]))
    host, path = data.draw(hosts), data.draw(paths)
    query = data.draw(queries)
    tail = path + ("" if query is None else f"?{query}")
    default = 443 if scheme == "https" else 80
    spellings = [None, default, 443 if default == 80 else 80, data.draw(st.integers(1, 65535))]

    def spelled(port: int | None) -> str:
        return f"{scheme}://{host}" + ("" if port is None else f":{port}") + tail

    signed = spelled(data.draw(st.sampled_from(spellings)))
    checked = spelled(data.draw(st.sampled_from(spellings)))
    signature = compute_signature(token, signed, params)
    sdk = RequestValidator(token).validate(checked, params, signature)
    assert is_valid_signature(token, checked, params, signature) == sdk
    if signed in (checked, spelled(None)) or (signed, checked) == (spelled(default), spelled(None)):
        assert sdk  # the same URL, one signed without a port, or the default port added


@settings(max_examples=100)
@given(tokens, urls(), form.filter(bool), st.data())
def test_tampered_params_are_rejected_by_both(
    token: str, url: str, params: dict[str, str], data: st.DataObject
) -> None:
    signature = compute_signature(token, url, params)
    name = data.draw(st.sampled_from(sorted(params)))
    tampered = dict(params)
    change = data.draw(st.sampled_from(["value", "drop", "add"]))
    if change == "value":
        tampered[name] = params[name] + data.draw(st.text(min_size=1, max_size=4))
    elif change == "drop":
        assume(name + params[name])  # an empty name with an empty value signs as nothing
        del tampered[name]
    else:
        assume("\U0001f4e8" + name not in params)
        tampered["\U0001f4e8" + name] = "x"
    assert not is_valid_signature(token, url, tampered, signature)
    assert not RequestValidator(token).validate(url, tampered, signature)


@settings(max_examples=100)
@given(tokens, urls(with_port=False), form, st.text(_PATH_CHARS, min_size=1, max_size=4))
def test_tampered_url_is_rejected_by_both(
    token: str, url: str, params: dict[str, str], extra: str
) -> None:
    signature = compute_signature(token, url, params)
    base, sep, query = url.partition("?")
    tampered = base + "/" + extra + sep + query
    assert not is_valid_signature(token, tampered, params, signature)
    assert not RequestValidator(token).validate(tampered, params, signature)


@settings(max_examples=100)
@given(tokens, urls(), form, st.integers(0, 26), st.sampled_from("AZaz09+/"))
def test_tampered_signature_is_rejected_by_both(
    token: str, url: str, params: dict[str, str], at: int, char: str
) -> None:
    signature = compute_signature(token, url, params)
    if signature[at] == char:
        char = "B" if char != "B" else "C"
    tampered = signature[:at] + char + signature[at + 1 :]
    assert not is_valid_signature(token, url, params, tampered)
    assert not RequestValidator(token).validate(url, params, tampered)
    assert not is_valid_signature(token, url, params, signature[:-1])
    assert not RequestValidator(token).validate(url, params, signature[:-1])


@settings(max_examples=100)
@given(
    tokens,
    urls(),
    st.lists(st.tuples(st.text(max_size=6), st.text(max_size=10)), max_size=12),
)
def test_repeated_names_as_the_sdk_handles_them(
    token: str, url: str, pairs: list[tuple[str, str]]
) -> None:
    """A multidict (aiohttp's request.post(), Flask's form): each distinct value once, sorted."""
    params = MultiDict(pairs)
    ours = compute_signature(token, url, params)
    assert ours == RequestValidator(token).compute_signature(url, params)
    assert is_valid_signature(token, url, params, ours)
    assert RequestValidator(token).validate(url, params, ours)
    # A plain mapping of lists means the same as the multidict.
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    assert compute_signature(token, url, grouped) == ours
