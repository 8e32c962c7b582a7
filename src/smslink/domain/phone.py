"""Phone numbers as audiences write them, turned into the E.164 form Twilio requires.

Audiences hold numbers in every format ("(212) 555-0147", "0049 30 23125 123",
"+44 20 7946 0123"); Twilio takes only E.164. Checking here, with Google's libphonenumber
metadata, catches a bad number before a POST is spent on it and names the reason in the
recipient's result row.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

from smslink.domain.errors import InvalidInput, say

#: Twilio's test-credential magic numbers (+15005550000..9). libphonenumber 9.0 treats the
#: 500 area code as valid personal-communication numbers, but its metadata changes with
#: every release; the demo and tests depend on these, so they are accepted regardless.
_TWILIO_MAGIC = re.compile(r"\+1500555000\d")

#: Characters people put between digits; libphonenumber ignores most of them itself, but
#: the "00" prefix check below needs them gone first.
_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")

_PARSE_REASONS: dict[int, str] = {
    NumberParseException.INVALID_COUNTRY_CODE: say("unknown country code"),
    NumberParseException.NOT_A_NUMBER: say("not a phone number"),
    NumberParseException.TOO_SHORT_AFTER_IDD: say("too short"),
    NumberParseException.TOO_SHORT_NSN: say("too short"),
    NumberParseException.TOO_LONG: say("too long"),
}
_LENGTH_REASONS: dict[int, str] = {
    ValidationResult.INVALID_COUNTRY_CODE: say("unknown country code"),
    ValidationResult.TOO_SHORT: say("too short"),
    ValidationResult.TOO_LONG: say("too long"),
    ValidationResult.INVALID_LENGTH: say("wrong number of digits"),
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: say("missing the area code"),
}


class PhoneError(InvalidInput, ValueError):
    """A recipient's phone number cannot be used; the text says why and how to write it."""


def check_region(region: str) -> str:
    """Return `region` as an upper-case ISO 3166 code, or raise ValueError if unknown.

    Checked once when a connection is configured, so a typo like "UK" (the code is "GB")
    fails there instead of turning every national-format number into an error.
    """
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        if code == "UK":
            raise ValueError(
                say(
                    "unknown region %(region)s (the United Kingdom is GB): use a two-letter "
                    "country code such as US, GB or DE",
                    region=repr(region),
                )
            )
        raise ValueError(
            say(
                "unknown region %(region)s: use a two-letter country code such as US, GB or DE",
                region=repr(region),
            )
        )
    return code


def normalize_phone(raw: str, region: str) -> str:
    """Return `raw` in E.164, reading numbers without a leading + as numbers of `region`.

    Both international prefixes are understood: "+49 30 ..." and "0049 30 ...".
    """
    region = check_region(region)
    text = _SEPARATORS.sub("", raw)
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text:
        raise PhoneError(say("the phone number is empty: fill it in or leave this record out"))
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise _error(raw, text, region, _PARSE_REASONS.get(exc.error_type, str(exc))) from exc
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if _TWILIO_MAGIC.fullmatch(e164):
        return e164
    if number.extension:
        raise _error(raw, text, region, say("it has an extension, and SMS cannot reach one"))
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        raise _error(raw, text, region, _LENGTH_REASONS.get(possible, say("impossible number")))
    if not phonenumbers.is_valid_number(number):
        raise _error(raw, text, region, say("no such number range"))
    return e164


def _error(raw: str, text: str, region: str, reason: str) -> PhoneError:
    """The user-facing message: the number, why it fails, and a correct example."""
    if text.startswith("+"):
        return PhoneError(
            say(
                "%(number)s is not a valid phone number: %(reason)s; write it in "
                "international form, e.g. %(example)s",
                number=repr(raw),
                reason=reason,
                example=_example(region),
            )
        )
    return PhoneError(
        say(
            "%(number)s is not a valid phone number for region %(region)s: %(reason)s; "
            "write it in international form, e.g. %(example)s",
            number=repr(raw),
            region=region,
            reason=reason,
            example=_example(region),
        )
    )


def _example(region: str) -> str:
    """A valid mobile number of the region, so the hint matches the user's country."""
    number = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    if number is None:
        return "+14155550123"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
