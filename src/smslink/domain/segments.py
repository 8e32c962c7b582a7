"""How many SMS segments a body costs, counted the way Twilio bills them.

Twilio bills and throttles senders by segment, so a marketer needs the count before
sending, not on the invoice. The rules (3GPP TS 23.038 and Twilio's API docs):

- A body made only of characters from the GSM-7 default alphabet is sent as GSM-7. Each
  character is one septet, except the extension characters ``^ { } [ ] ~ | € \\`` and form
  feed, which are an escape plus a septet: two septets. Up to 160 septets fit in one
  segment; a longer body is split into segments of 153 septets (the rest carries the
  concatenation header), and an escape pair is never split across two segments.
- Any character outside that alphabet makes the whole body UCS-2, counted in UTF-16 code
  units: up to 70 in one segment, otherwise 67 per segment. Characters outside the Basic
  Multilingual Plane (most emoji) are a surrogate pair, two units that are never split.
- An empty body still costs one segment.

The count is per UTF-16 code unit / septet, never per grapheme: "é" typed as e plus a
combining accent is two characters, and the combining accent forces UCS-2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The GSM 03.38 default alphabet exactly as 3GPP TS 23.038 and Twilio's calculator map it.
#: Note what is *not* here: á, í, ó, ú, ç (only capital Ç at 0x09), ê, ô, õ, curly quotes,
#: and the en/em dash; any of them switches the whole body to UCS-2.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"  # 0x1B (escape) is not a character of its own
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
#: Characters of the extension table: sent as escape + septet, so they cost two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE = 160
GSM7_PER_SEGMENT = 153
UCS2_SINGLE = 70
UCS2_PER_SEGMENT = 67


@dataclass(frozen=True)
class SegmentInfo:
    """A body's encoding, its length in that encoding's units, and the segments it takes."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(body: str) -> bool:
    """True when every character of `body` can be sent in GSM-7."""
    return set(body) <= _GSM7_ALL


def count_segments(body: str) -> SegmentInfo:
    """Count the segments Twilio will bill for `body` (see the module docstring for the rules)."""
    chars = set(body)
    if chars <= _GSM7_ALL:
        if chars.isdisjoint(GSM7_EXTENSION):
            return SegmentInfo(
                "GSM-7", len(body), _pack_uniform(len(body), GSM7_SINGLE, GSM7_PER_SEGMENT)
            )
        widths = [2 if c in GSM7_EXTENSION else 1 for c in body]
        return SegmentInfo("GSM-7", sum(widths), _pack(widths, GSM7_SINGLE, GSM7_PER_SEGMENT))
    if max(chars) <= "\uffff":
        return SegmentInfo(
            "UCS-2", len(body), _pack_uniform(len(body), UCS2_SINGLE, UCS2_PER_SEGMENT)
        )
    widths = [2 if ord(c) > 0xFFFF else 1 for c in body]
    return SegmentInfo("UCS-2", sum(widths), _pack(widths, UCS2_SINGLE, UCS2_PER_SEGMENT))


def _pack_uniform(units: int, single: int, per_segment: int) -> int:
    """Segments for one-unit characters only, where nothing can straddle a boundary."""
    return 1 if units <= single else -(-units // per_segment)


def _pack(widths: list[int], single: int, per_segment: int) -> int:
    """Segments needed for characters of the given unit widths.

    A body that fits in one segment uses the whole of it. Otherwise segments are filled
    greedily, and a character whose units would straddle a boundary moves whole to the
    next segment, so a split body can need one more segment than ceil(units / per_segment).
    """
    if sum(widths) <= single:
        return 1
    segments, used = 1, 0
    for width in widths:
        if used + width > per_segment:
            segments += 1
            used = 0
        used += width
    return segments
