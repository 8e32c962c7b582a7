"""The simulator's own segment counter (GSM-7 160/153, UCS-2 70/67)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smslink.simulator._segments import count_segments

GSM_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"  # noqa: E501


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters count twice
        ("€" * 81, 2),
        ("a" * 159 + "^", 2),
        ("ü" * 160, 1),  # in the GSM basic table
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
        ("😀" * 35, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, 2),
        ("a" * 152 + "€" + "a" * 10, 2),  # the escape pair is never split across parts
        ("a" * 152 + "€" + "a" * 153, 3),
        ("ж" * 66 + "😀" + "ж" * 67, 3),  # nor a surrogate pair
    ],
)
def test_known_counts(body: str, segments: int) -> None:
    assert count_segments(body) == segments


@given(st.text(alphabet=GSM_BASIC, min_size=1, max_size=1600))
def test_plain_gsm_text_follows_the_formula(body: str) -> None:
    expected = 1 if len(body) <= 160 else -(-len(body) // 153)
    assert count_segments(body) == expected


@given(st.text(min_size=1, max_size=400), st.text(min_size=1, max_size=400))
def test_longer_text_never_needs_fewer_segments(body: str, more: str) -> None:
    assert count_segments(body + more) >= count_segments(body)
