"""E.164 normalisation of numbers as audiences write them."""

from __future__ import annotations

import pytest

from smslink.domain.phone import PhoneError, check_region, normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "(212) 555-0147",
        "212-555-0147",
        "212.555.0147",
        "212 555 0147",
        "2125550147",
        "1 (212) 555-0147",
        "+1 212 555 0147",
        "+1-212-555-0147",
        "001 212 555 0147",
        "011 1 212 555 0147",
        "  +1 (212) 555-0147  ",
    ],
)
def test_us_formats_normalise(raw: str) -> None:
    assert normalize_phone(raw, "US") == "+12125550147"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 20 7946 0123", "US", "+442079460123"),
        ("0044 20 7946 0123", "US", "+442079460123"),
        ("020 7946 0123", "GB", "+442079460123"),
        ("030 23125 123", "DE", "+493023125123"),
        ("030/23125123", "de", "+493023125123"),
        ("0491 570 156", "AU", "+61491570156"),
    ],
)
def test_international_and_national_forms(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("digit", range(10))
def test_twilio_magic_numbers_normalise(digit: int) -> None:
    assert normalize_phone(f"+1500555000{digit}", "US") == f"+1500555000{digit}"
    assert normalize_phone(f"(500) 555-000{digit}", "US") == f"+1500555000{digit}"


def test_fictional_555_01xx_numbers_are_valid_for_phonenumbers() -> None:
    # Reserved for fiction by NANPA, yet phonenumbers calls them valid: the demo uses them
    # so that it can never text a real person.
    assert normalize_phone("(415) 555-0123", "US") == "+14155550123"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12345", "for region US: too short"),
        ("not a phone", "not a phone number"),
        ("212 555 01477777", "too long"),
        ("+999 1234 5678", "unknown country code"),
        ("+1 212 555 0147 ext. 12", "extension"),
        ("+1 099 555 0147", "+1 099 555 0147' is not a valid phone number: "),
        ("(123) 456-7890", "no such number range"),
    ],
)
def test_bad_numbers_name_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(PhoneError) as info:
        normalize_phone(raw, "US")
    message = str(info.value)
    assert reason in message
    assert message.startswith(repr(raw))
    assert "write it in international form, e.g. +1" in message


def test_the_message_suggests_the_region_s_own_format() -> None:
    with pytest.raises(PhoneError, match=r"for region DE: .* e\.g\. \+49"):
        normalize_phone("12", "DE")


@pytest.mark.parametrize("raw", ["", "   ", "--"])
def test_empty_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(PhoneError, match="empty"):
        normalize_phone(raw, "US")


def test_the_magic_example_in_the_brief() -> None:
    with pytest.raises(PhoneError) as info:
        normalize_phone("12345", "US")
    assert str(info.value).startswith(
        "'12345' is not a valid phone number for region US: too short; "
        "write it in international form, e.g. "
    )


def test_check_region_uppercases_and_validates() -> None:
    assert check_region("us") == "US"
    assert check_region(" gb ") == "GB"
    with pytest.raises(ValueError, match="unknown region 'XX'"):
        check_region("XX")
    with pytest.raises(ValueError, match="GB"):
        check_region("UK")


def test_normalize_phone_rejects_an_unknown_region() -> None:
    with pytest.raises(ValueError, match="unknown region"):
        normalize_phone("2125550147", "XX")
