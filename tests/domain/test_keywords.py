"""Twilio's opt-out, opt-in and help keywords: only a whole reply counts, in any case."""

from __future__ import annotations

import pytest

from smslink.domain.keywords import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    Keyword,
    KeywordKind,
    inbound_keyword,
    inbound_source,
    match_keyword,
)


def test_twilios_documented_lists() -> None:
    assert {
        "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
    } == OPT_OUT_KEYWORDS  # fmt: skip
    assert {"START", "YES", "UNSTOP"} == OPT_IN_KEYWORDS
    assert {"HELP", "INFO"} == HELP_KEYWORDS


@pytest.mark.parametrize(
    ("body", "word", "kind"),
    [
        ("STOP", "STOP", KeywordKind.OPT_OUT),
        ("stop", "STOP", KeywordKind.OPT_OUT),
        ("  Stop \n", "STOP", KeywordKind.OPT_OUT),
        ("\tunsubscribe\t", "UNSUBSCRIBE", KeywordKind.OPT_OUT),
        ("StopAll", "STOPALL", KeywordKind.OPT_OUT),
        ("cancel", "CANCEL", KeywordKind.OPT_OUT),
        ("End", "END", KeywordKind.OPT_OUT),
        ("quit", "QUIT", KeywordKind.OPT_OUT),
        ("revoke", "REVOKE", KeywordKind.OPT_OUT),
        ("OptOut", "OPTOUT", KeywordKind.OPT_OUT),
        ("start", "START", KeywordKind.OPT_IN),
        ("Yes", "YES", KeywordKind.OPT_IN),
        ("UNSTOP", "UNSTOP", KeywordKind.OPT_IN),
        ("help", "HELP", KeywordKind.HELP),
        (" INFO ", "INFO", KeywordKind.HELP),
    ],
)
def test_a_whole_keyword_in_any_case_with_whitespace_around_it(
    body: str, word: str, kind: KeywordKind
) -> None:
    assert match_keyword(body) == Keyword(word, kind)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "STOP please",
        "please stop",
        "stop.",
        "stop!",
        "S TOP",
        "STOPP",
        "opt out",
        "opt-out",
        "QU\N{LATIN SMALL LETTER DOTLESS I}T",  # upper-cases to QUIT, but is not what Twilio reads
        "\N{FULLWIDTH LATIN CAPITAL LETTER S}TOP",
        "STOP" * 10_000,
        "x" * 1_000_000,
    ],
)
def test_anything_else_is_an_ordinary_message(body: str) -> None:
    assert match_keyword(body) is None


def test_the_source_of_an_inbound_optout_names_its_keyword() -> None:
    source = inbound_source(Keyword("UNSUBSCRIBE", KeywordKind.OPT_OUT))

    assert source == "inbound UNSUBSCRIBE"
    assert inbound_keyword(source) == "UNSUBSCRIBE"
    assert inbound_keyword("twilio") is None
    assert inbound_keyword("inbound ") is None
