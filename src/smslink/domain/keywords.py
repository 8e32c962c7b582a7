"""Twilio's opt-out, opt-in and help keywords: what a recipient's reply means for a sender.

Twilio's list, as documented in "Twilio support for opt-out keywords (SMS STOP filtering)"
(https://help.twilio.com/articles/223134027, Programmable Messaging's default handling for
long codes, toll-free numbers and Messaging Services without Advanced Opt-Out):

- opt-out: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, and since the FCC's 2025 consent
  rules REVOKE and OPTOUT. Twilio blocks every further message from that sender (the
  number, or the whole Messaging Service) to the recipient, answering 21610;
- opt-in: START, YES, UNSTOP. Twilio lifts the block for that sender;
- help: HELP, INFO. Twilio answers with its help text; nothing is blocked or lifted.

Only a message that is exactly one keyword counts, as Twilio matches it: the whole body,
surrounding whitespace ignored, in any letter case. "STOP please" or "please stop" is an
ordinary message (Twilio blocks nothing, so smslink records nothing either). Letters are
compared as ASCII only, so a look-alike ("QUİT", with a dotted capital I) is not a keyword.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "HELP_KEYWORDS",
    "INBOUND_SOURCE_PREFIX",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "Keyword",
    "KeywordKind",
    "inbound_keyword",
    "inbound_source",
    "match_keyword",
]


class KeywordKind(StrEnum):
    OPT_OUT = "opt-out"
    OPT_IN = "opt-in"
    HELP = "help"


OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

_KINDS: dict[str, KeywordKind] = {
    **dict.fromkeys(OPT_OUT_KEYWORDS, KeywordKind.OPT_OUT),
    **dict.fromkeys(OPT_IN_KEYWORDS, KeywordKind.OPT_IN),
    **dict.fromkeys(HELP_KEYWORDS, KeywordKind.HELP),
}
_LONGEST = max(len(word) for word in _KINDS)

#: `OptOut.source` of an opt-out learned from the recipient's own reply: "inbound STOP".
INBOUND_SOURCE_PREFIX = "inbound "


@dataclass(frozen=True, slots=True)
class Keyword:
    """A reply that is one of Twilio's keywords: which one (upper case), and what it does."""

    word: str
    kind: KeywordKind


def match_keyword(body: str) -> Keyword | None:
    """The keyword `body` is, or None when it is an ordinary message.

    The whole body counts, whitespace around it ignored, letter case ignored (ASCII only).
    A long body is not upper-cased or looked up: no keyword is longer than 11 letters.
    """
    text = body.strip()
    if len(text) > _LONGEST or not text.isascii():
        return None
    word = text.upper()
    kind = _KINDS.get(word)
    return None if kind is None else Keyword(word, kind)


def inbound_source(keyword: Keyword) -> str:
    """What an opt-out learned from a reply keeps as its source ("inbound STOP")."""
    return INBOUND_SOURCE_PREFIX + keyword.word


def inbound_keyword(source: str) -> str | None:
    """The keyword an opt-out's source says the recipient replied, or None when it was
    learned otherwise (a 21610 answer to a send)."""
    if not source.startswith(INBOUND_SOURCE_PREFIX):
        return None
    return source.removeprefix(INBOUND_SOURCE_PREFIX) or None
