"""Segment counting as a carrier does it, private to the simulator.

The simulator is an independent peer of smslink, so it keeps its own counter: the product's
counter is checked against this one instead of against itself.
"""

from __future__ import annotations

# GSM 03.38 basic table (the escape character itself excluded: it cannot be sent literally).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs two septets (escape + character).
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

_GSM_SINGLE, _GSM_PART = 160, 153  # septets in one segment / per part of a split message
_UCS2_SINGLE, _UCS2_PART = 70, 67  # UTF-16 code units likewise


def _pack(units: list[int], part: int) -> int:
    """Parts needed when a multi-unit character (escape pair, surrogate pair) is never split."""
    parts, used = 1, 0
    for width in units:
        if used + width > part:
            parts, used = parts + 1, 0
        used += width
    return parts


def count_segments(body: str) -> int:
    """Segments Twilio bills for `body` (an empty body, i.e. media only, is one)."""
    if not body:
        return 1
    chars = set(body)
    if chars <= _GSM_BASIC | _GSM_EXTENSION:
        if chars.isdisjoint(_GSM_EXTENSION):
            total = len(body)
            return 1 if total <= _GSM_SINGLE else -(-total // _GSM_PART)
        widths = [2 if ch in _GSM_EXTENSION else 1 for ch in body]
        single, part = _GSM_SINGLE, _GSM_PART
    else:
        widths = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
        single, part = _UCS2_SINGLE, _UCS2_PART
    return 1 if sum(widths) <= single else _pack(widths, part)
