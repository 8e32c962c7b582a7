"""The E.164 fast path of normalize_phone gives exactly what phonenumbers.parse gives.

`_parse_e164` skips `phonenumbers.parse` for "+digits" text; these tests hold it to the
library: wherever it answers, its PhoneNumber must equal parse's field by field, and
`normalize_phone` must return the same E.164 string or raise the same message as
`_normalize_slow`, which sends every number through parse.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    PhoneMetadata,
    PhoneNumberFormat,
    PhoneNumberType,
    phonenumberutil,
)

from smslink.domain import phone
from smslink.domain.phone import PhoneError, normalize_phone

CALLING_CODES = sorted(COUNTRY_CODE_TO_REGION_CODE)
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
NUMBER_TYPES = [
    value
    for name, value in vars(PhoneNumberType).items()
    if name.isupper() and isinstance(value, int) and name != "UNKNOWN"
]


def _examples() -> list[str]:
    """Every example number the library has, for every region and number type, in E.164."""
    found: set[str] = set()
    for region in [*REGIONS, "001"]:
        if region == "001":
            numbers = [
                phonenumbers.example_number_for_non_geo_entity(code)
                for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
            ]
        else:
            numbers = [phonenumbers.example_number_for_type(region, t) for t in NUMBER_TYPES]
        for number in numbers:
            if number is not None:
                found.add(phonenumbers.format_number(number, PhoneNumberFormat.E164))
    return sorted(found)


EXAMPLES = _examples()


def _prefixes(code: int) -> list[str]:
    """What may stand between a country code and the number: national and carrier prefixes."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    prefixes = ["", "", "", "0", "00", "1", "8", "9", "15", "90", "183"]
    if metadata is not None and metadata.national_prefix:
        prefixes.append(metadata.national_prefix)
    return prefixes


def _outcome(normalize: Any, raw: str, region: str) -> tuple[str, str]:
    try:
        return ("ok", normalize(raw, region))
    except PhoneError as exc:
        return ("error", str(exc))


def _assert_same(raw: str, region: str) -> None:
    """Fast path's PhoneNumber equals parse's wherever taken; whole outcome equals slow path's."""
    try:
        text = phone._clean(raw)
    except PhoneError:
        text = ""
    number = phone._parse_e164(text) if text else None
    if number is not None:
        reference = phonenumbers.parse(text, region)
        assert vars(number) == vars(reference), text
        assert number == reference
        assert phonenumbers.format_number(reference, PhoneNumberFormat.E164) == text
    assert _outcome(normalize_phone, raw, region) == _outcome(phone._normalize_slow, raw, region)


def _decorate(text: str, style: str) -> str:
    """Write `text` as people do: as is, in groups of three, or with "00" for "+"."""
    if style == "spaced":
        return " ".join(text[i : i + 3] for i in range(0, len(text), 3))
    if style == "00" and text.startswith("+"):
        return "00" + text[1:]
    return text


digits = st.text(alphabet="0123456789", max_size=14)
by_calling_code = st.sampled_from(CALLING_CODES).flatmap(
    lambda code: st.builds(
        lambda prefix, rest: f"+{code}{prefix}{rest}", st.sampled_from(_prefixes(code)), digits
    )
)


def _mutate(text: str, position: int, digit: str, how: str) -> str:
    """An example number with one digit changed, added, removed or written in another script
    (Arabic-Indic, which parse reads as the same digit): near misses."""
    position = 1 + position % max(len(text) - 1, 1)
    if how == "replace":
        return text[:position] + digit + text[position + 1 :]
    if how == "insert":
        return text[:position] + digit + text[position:]
    if how == "delete":
        return text[:position] + text[position + 1 :]
    if how == "foreign" and text[position : position + 1].isdigit():
        return text[:position] + chr(0x0660 + int(text[position])) + text[position + 1 :]
    return text


near_examples = st.builds(
    _mutate,
    st.sampled_from(EXAMPLES),
    st.integers(0, 20),
    st.sampled_from("0123456789"),
    st.sampled_from(["keep", "replace", "insert", "delete", "foreign"]),
)
random_digits = st.builds(
    lambda plus, body: plus + body,
    st.sampled_from(["+", "+", ""]),
    st.text(alphabet="0123456789", max_size=20),
)
messy = st.text(alphabet="+0123456789 -().x#;,\u0663\u0661\uff11\uff0b\u00a0ext", max_size=24)
texts = st.builds(
    _decorate,
    st.one_of(by_calling_code, near_examples, random_digits, messy),
    st.sampled_from(["plain", "plain", "spaced", "00"]),
)


@settings(max_examples=3000, deadline=None)
@given(raw=texts, region=st.sampled_from(REGIONS))
@example(raw="+12125550147", region="US")
@example(raw="+5491123456789", region="AR")
@example(raw="+390612345678", region="IT")
@example(raw="+447400123456", region="DE")
@example(raw="+8613123456789", region="CN")
@example(raw="+6118312345678", region="AU")
@example(raw="+15005550006", region="US")
@example(raw="+12", region="US")
@example(raw="+0012125550147", region="US")
def test_fast_path_agrees_with_parse(raw: str, region: str) -> None:
    _assert_same(raw, region)


@pytest.mark.parametrize("region", ["US", "DE"])
def test_every_example_number_agrees(region: str) -> None:
    for text in EXAMPLES:
        _assert_same(text, region)


@pytest.mark.parametrize("code", CALLING_CODES)
def test_every_calling_code_agrees(code: int) -> None:
    for prefix in _prefixes(code):
        for rest in ["", "2", "23", "2345678", "212555014", "2125550147", "21255501478901"]:
            _assert_same(f"+{code}{prefix}{rest}", "US")


@pytest.mark.parametrize(
    "text",
    ["+12125550147", "+16465550000", "+447400123456", "+4915123456789", "+33612345678"],
)
def test_common_e164_numbers_take_the_fast_path(text: str) -> None:
    assert phone._parse_e164(text) == phonenumbers.parse(text, "US")


@pytest.mark.parametrize(
    "text",
    [
        "+5491123456789",  # Argentina: the national prefix pattern matches anything
        "+390612345678",  # Italian leading zero
        "+4401234567890",  # national number starting with 0
        "+6118312345678",  # Australian carrier prefix 1831
        "+11234567890",  # US national prefix 1
        "+9991234567",  # no such calling code
        "+1",  # too short
        "+12",
        "+1 212 555 0147",  # not bare digits
        "+\u0661\u0662\u0661\u0662\u0665\u0665\u0665\u0660\u0661\u0664\u0667",  # Arabic digits
        "+1212555014\u0667",  # one Arabic-Indic digit
        "+1212555014\uff17",  # one full-width digit
        "+012125550147",
    ],
)
def test_numbers_parse_might_read_differently_take_the_slow_path(text: str) -> None:
    assert phone._parse_e164(text) is None


def test_length_limits_match_the_library() -> None:
    assert phonenumberutil._MIN_LENGTH_FOR_NSN == phone._MIN_NSN_LENGTH
    assert phonenumberutil._MAX_LENGTH_FOR_NSN == phone._MAX_NSN_LENGTH
    assert phonenumberutil._MAX_LENGTH_COUNTRY_CODE == phone._MAX_COUNTRY_CODE_LENGTH


#: Calling codes several regions share: where `_is_valid` walks the regions itself.
SHARED_CODES = [code for code in CALLING_CODES if len(COUNTRY_CODE_TO_REGION_CODE[code]) > 1]
near_shared = st.builds(
    _mutate,
    st.sampled_from(
        [text for text in EXAMPLES if any(text.startswith(f"+{c}") for c in SHARED_CODES)]
    ),
    st.integers(0, 20),
    st.sampled_from("0123456789"),
    st.sampled_from(["keep", "replace", "insert", "delete"]),
)
shared_numbers = st.one_of(
    near_shared,
    st.builds(
        lambda code, rest: f"+{code}{rest}",
        st.sampled_from(SHARED_CODES),
        st.text(alphabet="0123456789", min_size=1, max_size=15),
    ),
)


def _assert_same_verdict(text: str) -> None:
    try:
        number = phonenumbers.parse(text, "US")
    except phonenumbers.NumberParseException:
        return
    assert phone._is_valid(number) == phonenumbers.is_valid_number(number), text


def test_validity_agrees_with_the_library_on_every_example_number() -> None:
    assert SHARED_CODES and 1 in SHARED_CODES
    for text in EXAMPLES:
        _assert_same_verdict(text)


@settings(max_examples=3000, deadline=None)
@given(text=shared_numbers)
@example(text="+12125550147")  # US: the first of +1's regions
@example(text="+14165550147")  # Canada: after the regions with leading digits
@example(text="+12685550147")  # Antigua: leading digits 268
@example(text="+447624123456")  # Isle of Man: leading digits within +44
@example(text="+79123456789")  # +7: Russia by leading digits
@example(text="+76123456789")  # +7: Kazakhstan
def test_validity_agrees_with_the_library_for_shared_calling_codes(text: str) -> None:
    _assert_same_verdict(text)
