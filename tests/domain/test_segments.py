"""Segment counting at every boundary Twilio bills by."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smslink.domain.segments import GSM7_BASIC, GSM7_EXTENSION, SegmentInfo, count_segments, is_gsm7

EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair, two UTF-16 units


def test_empty_body_is_one_segment() -> None:
    assert count_segments("") == SegmentInfo("GSM-7", 0, 1)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_boundaries(length: int, segments: int) -> None:
    assert count_segments("a" * length) == SegmentInfo("GSM-7", length, segments)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3)],
)
def test_ucs2_boundaries(length: int, segments: int) -> None:
    assert count_segments("ж" * length) == SegmentInfo("UCS-2", length, segments)


def test_extension_characters_count_two_septets() -> None:
    for char in "^{}[]~|€\\\f":
        assert count_segments(char) == SegmentInfo("GSM-7", 2, 1), char


def test_extension_characters_up_to_160_septets_fit_one_segment() -> None:
    assert count_segments("€" * 80) == SegmentInfo("GSM-7", 160, 1)
    assert count_segments("€" * 80 + "a") == SegmentInfo("GSM-7", 161, 2)


def test_escape_pair_straddling_the_153_boundary_moves_to_the_next_segment() -> None:
    # 152 septets then an escape pair: 154 septets would split it, so it starts segment 2.
    body = "a" * 152 + "€" + "a" * 7  # 161 septets
    assert count_segments(body) == SegmentInfo("GSM-7", 161, 2)
    # 152 + 2 + 152 = 306 septets fits 2 x 153 by count, but the pair forces a third.
    body = "a" * 152 + "€" + "a" * 152
    assert count_segments(body) == SegmentInfo("GSM-7", 306, 3)
    # The same count without a straddle fits in two.
    assert count_segments("a" * 151 + "€" + "a" * 153).segments == 2


def test_emoji_straddling_the_67_boundary_moves_to_the_next_segment() -> None:
    body = "ж" * 66 + EMOJI + "ж" * 66  # 134 units, but the pair cannot sit at 66/67
    assert count_segments(body) == SegmentInfo("UCS-2", 134, 3)
    assert count_segments("ж" * 65 + EMOJI + "ж" * 67).segments == 2


def test_emoji_count_two_units_and_force_ucs2() -> None:
    assert count_segments("Hi " + EMOJI) == SegmentInfo("UCS-2", 5, 1)
    assert count_segments(EMOJI * 35) == SegmentInfo("UCS-2", 70, 1)
    assert count_segments(EMOJI * 35 + "a") == SegmentInfo("UCS-2", 71, 2)


def test_one_non_gsm_character_makes_the_whole_body_ucs2() -> None:
    body = "a" * 100 + "á"
    assert count_segments(body) == SegmentInfo("UCS-2", 101, 2)


def test_crlf_counts_as_two_gsm_characters() -> None:
    assert count_segments("a\r\nb") == SegmentInfo("GSM-7", 4, 1)
    assert count_segments("a" * 158 + "\r\n") == SegmentInfo("GSM-7", 160, 1)


@pytest.mark.parametrize("char", list("éèùìòÇØøÅåÆæßÉÄÖÑÜäöñüà¡¿£¥¤§ΔΦΓΛΩΠΨΣΘΞ@$_"))
def test_default_alphabet_letters_are_gsm7(char: str) -> None:
    assert is_gsm7(char)


@pytest.mark.parametrize("char", list("áíóúçêôõâãëïÿœÀÈÌÒÙÁÍÓÚ`\u2019\u201c\u201d\u2013\u2014\t…"))
def test_lookalikes_outside_the_alphabet_are_not_gsm7(char: str) -> None:
    assert not is_gsm7(char)


def test_alphabet_sizes_match_3gpp_23_038() -> None:
    assert len(GSM7_BASIC) == 127  # 128 code points minus the escape
    assert len(GSM7_EXTENSION) == 10  # including form feed


@given(st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=700))
def test_gsm7_segments_hold_at_most_153_septets(body: str) -> None:
    info = count_segments(body)
    assert info.encoding == "GSM-7"
    if info.units <= 160:
        assert info.segments == 1
    else:
        assert -(-info.units // 153) <= info.segments <= -(-info.units // 152)


@given(st.text(min_size=1, max_size=300).filter(lambda s: not is_gsm7(s)))
def test_ucs2_units_are_utf16_code_units(body: str) -> None:
    info = count_segments(body)
    assert info.encoding == "UCS-2"
    assert info.units == len(body.encode("utf-16-le", "surrogatepass")) // 2
    if info.units > 70:
        assert -(-info.units // 67) <= info.segments <= -(-info.units // 66)


def reference_count(body: str) -> tuple[str, int, int]:
    """The rules written out as plainly as possible, to check the fast paths against."""
    gsm = all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body)
    if gsm:
        widths = [2 if c in GSM7_EXTENSION else 1 for c in body]
        single, per = 160, 153
    else:
        widths = [2 if ord(c) > 0xFFFF else 1 for c in body]
        single, per = 70, 67
    if sum(widths) <= single:
        return ("GSM-7" if gsm else "UCS-2"), sum(widths), 1
    segments, used = 1, 0
    for w in widths:
        if used + w > per:
            segments, used = segments + 1, 0
        used += w
    return ("GSM-7" if gsm else "UCS-2"), sum(widths), segments


@given(
    st.one_of(
        st.text(alphabet="ab€[é\r\n", max_size=400),
        st.text(alphabet=st.sampled_from([*"abж€", EMOJI]), max_size=250),
    )
)
def test_fast_paths_agree_with_the_plain_rules(body: str) -> None:
    info = count_segments(body)
    assert (info.encoding, info.units, info.segments) == reference_count(body)
