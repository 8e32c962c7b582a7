"""Phone numbers as audiences write them, turned into the E.164 form Twilio requires.

Audiences hold numbers in every format ("(212) 555-0147", "0049 30 23125 123",
"+44 20 7946 0123"); Twilio takes only E.164. Checking here, with Google's libphonenumber
metadata, catches a bad number before a POST is spent on it and names the reason in the
recipient's result row.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberType,
    ValidationResult,
)
from phonenumbers.re_util import re_compile

from smslink.domain.errors import InvalidInput, say

# libphonenumber compiles its metadata patterns with plain re.compile and so leans on the
# re module's cache, which holds 512 patterns; validating numbers of many countries needs
# over a thousand, and every call then recompiles the ones it uses (measured on a mix of
# every region's example numbers: ~200 us per call instead of ~9). The library's own
# cache keeps each compiled pattern, the same object re.compile would return, so verdicts
# are untouched; it costs under 1 MB. Older releases (the dependency allows >=8.13) lack it.
_enable_pattern_cache = getattr(phonenumbers, "enable_pattern_cache", None)
if _enable_pattern_cache is not None:
    _enable_pattern_cache()

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
    text = _clean(raw)
    number = _parse_e164(text)
    if number is None:
        number = _parse(raw, text, region)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    else:
        # "+", the country code and a national number without leading zeros: exactly
        # what format_number would return for it.
        e164 = text
    return _check(raw, text, region, number, e164)


def _normalize_slow(raw: str, region: str) -> str:
    """`normalize_phone` with every number going through `phonenumbers.parse`, and the
    library's own `is_valid_number`.

    The reference the fast path is tested against; not used in production.
    """
    region = check_region(region)
    text = _clean(raw)
    number = _parse(raw, text, region)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return _check(raw, text, region, number, e164, is_valid=phonenumbers.is_valid_number)


def _clean(raw: str) -> str:
    """`raw` without separators and with a "00" international prefix written as "+"."""
    text = _SEPARATORS.sub("", raw)
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text:
        raise PhoneError(say("the phone number is empty: fill it in or leave this record out"))
    return text


def _parse(raw: str, text: str, region: str) -> PhoneNumber:
    """`phonenumbers.parse`, with its failures turned into a PhoneError naming the reason."""
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise _error(raw, text, region, _PARSE_REASONS.get(exc.error_type, str(exc))) from exc


#: libphonenumber's number typing (private): None if a release renames it, and then every
#: number takes `is_valid_number` itself.
_number_type = getattr(phonenumbers.phonenumberutil, "_number_type_helper", None)


def _is_valid(number: PhoneNumber) -> bool:
    """`phonenumbers.is_valid_number`'s verdict, at about half its cost for a calling code
    that several regions share (+1 has 25, the US first; +44, +61, +7 ...).

    `is_valid_number` first finds the number's region, walking the code's regions in
    order: a region whose metadata has leading digits is the one when they match; any
    other is the one when the number has a known type there. It then asks whether the
    number is valid for that region, which for a region of the second kind works out
    the same type with the same metadata a second time. Here that first answer is
    kept; everything else is the library's own calls, in its order. Tested against the
    library on every example number and generated numbers of every shared code.
    """
    code = number.country_code
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code) if code is not None else None
    if _number_type is None or regions is None or len(regions) == 1:
        return phonenumbers.is_valid_number(number)
    national = phonenumbers.national_significant_number(number)
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if re_compile(metadata.leading_digits).match(national):
                return phonenumbers.is_valid_number_for_region(number, region)
        elif _number_type(national, metadata) != PhoneNumberType.UNKNOWN:
            if metadata.country_code == code:
                return True  # what is_valid_number_for_region(number, region) would find
            return phonenumbers.is_valid_number_for_region(number, region)
    return False  # no region: is_valid_number_for_region(number, None) is False


def _check(
    raw: str,
    text: str,
    region: str,
    number: PhoneNumber,
    e164: str,
    *,
    is_valid: Callable[[PhoneNumber], bool] = _is_valid,
) -> str:
    """Return `e164` if `number` can take an SMS, else raise a PhoneError saying why."""
    if _TWILIO_MAGIC.fullmatch(e164):
        return e164
    if number.extension:
        raise _error(raw, text, region, say("it has an extension, and SMS cannot reach one"))
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        raise _error(raw, text, region, _LENGTH_REASONS.get(possible, say("impossible number")))
    if not is_valid(number):
        raise _error(raw, text, region, say("no such number range"))
    return e164


#: "+" and ASCII digits only, the first not 0 (no country code starts with 0). Not \d,
#: which admits other scripts' digits that parse would have to normalise first.
_E164_SHAPE = re.compile(r"\+[1-9][0-9]*")

#: phonenumberutil's _MIN_LENGTH_FOR_NSN and _MAX_LENGTH_FOR_NSN: parse rejects national
#: numbers outside these lengths (a test checks they still match the library's).
_MIN_NSN_LENGTH = 2
_MAX_NSN_LENGTH = 17

#: phonenumberutil's _MAX_LENGTH_COUNTRY_CODE.
_MAX_COUNTRY_CODE_LENGTH = 3

#: Stands in for a country's national-prefix pattern when the number must always take the
#: slow path: it matches at the start of every string.
_ALWAYS = re.compile("")

#: Country calling code -> the compiled national_prefix_for_parsing of its metadata, or None
#: if it has none. Filled on first use of each code.
_NATIONAL_PREFIX: dict[int, re.Pattern[str] | None] = {}


def _parse_e164(text: str) -> PhoneNumber | None:
    """What `phonenumbers.parse(text, region)` returns, or None: then call parse itself.

    This runs once per audience record, and parse is half its cost (~9 of ~19 us), though
    most audience numbers are E.164 already. For those the work parse does reduces to
    splitting off the country code, unless the number is one of the cases below, where
    this returns None because parse may act (or fail) differently:

    - `text` is not "+" then ASCII digits with a non-zero first digit: other characters
      need parse's extraction and normalisation (extensions, other scripts' digits), and
      after "+0" parse finds no country code;
    - none of the first 1-3 digits, shortest first, is a known calling code (exactly how
      parse picks it): parse then retries the digits without the plus, as a number of
      the region, or raises INVALID_COUNTRY_CODE;
    - the national number is shorter than 2 or longer than 17 digits: parse raises
      TOO_SHORT_AFTER_IDD, TOO_SHORT_NSN or TOO_LONG;
    - the national number starts with 0: parse records Italian leading zeros;
    - the country's national_prefix_for_parsing matches at its start: parse may strip a
      national prefix or carrier code, or transform the number (Argentina's pattern
      matches the empty string, so Argentine numbers always go to parse);
    - the country has no metadata (none in the library today).

    Otherwise parse's result is PhoneNumber(country_code, national_number) with every
    other field at its default, which is what this builds. The region does not matter: a
    number starting with "+" is read with its own country's metadata.
    """
    if not _E164_SHAPE.fullmatch(text):
        return None
    digits = text[1:]
    for size in range(1, min(len(digits), _MAX_COUNTRY_CODE_LENGTH) + 1):
        country_code = int(digits[:size])
        if country_code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if not _MIN_NSN_LENGTH <= len(national) <= _MAX_NSN_LENGTH or national[0] == "0":
        return None
    prefix = _national_prefix(country_code)
    if prefix is not None and prefix.match(national):
        return None
    return PhoneNumber(country_code=country_code, national_number=int(national))


def _national_prefix(country_code: int) -> re.Pattern[str] | None:
    """The compiled national_prefix_for_parsing of the country's metadata, cached.

    The metadata is the one parse switches to for a number with this country code; the
    pattern is compiled as parse compiles it (re.compile, no flags).
    """
    try:
        return _NATIONAL_PREFIX[country_code]
    except KeyError:
        pass
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, phonenumbers.region_code_for_country_code(country_code)
    )
    pattern: re.Pattern[str] | None
    if metadata is None:
        pattern = _ALWAYS
    elif metadata.national_prefix_for_parsing:
        pattern = re.compile(metadata.national_prefix_for_parsing)
    else:
        pattern = None
    _NATIONAL_PREFIX[country_code] = pattern
    return pattern


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
