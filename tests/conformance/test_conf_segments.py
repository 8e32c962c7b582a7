"""The simulator's num_segments, over HTTP, agrees with smslink's counter on every edge.

smslink estimates cost and paces senders with its own counter (tests/test_segments.py); the
simulator bills with a separate one (tests/simulator/test_sim_segments.py). Both are tested
alone; here they must give the same answer for the same body after a real form-encoded
round trip, on the edges where a miscount costs money: 160/161 and 70/71 characters,
extension characters, emoji and CRLF line breaks.
"""

from __future__ import annotations

import pytest

from smslink.domain.segments import count_segments
from tests.conformance.recording import RecordingSimulator

EMOJI = "\U0001f600"  # outside the BMP: two UTF-16 units

EDGES: list[tuple[str, str, int]] = [
    ("GSM-7 160", "a" * 160, 1),
    ("GSM-7 161", "a" * 161, 2),
    ("GSM-7 306", "a" * 306, 2),
    ("GSM-7 307", "a" * 307, 3),
    ("UCS-2 70", "ж" * 70, 1),
    ("UCS-2 71", "ж" * 71, 2),
    ("UCS-2 134", "ж" * 134, 2),
    ("UCS-2 135", "ж" * 135, 3),
    ("extension chars count twice: 80", "€" * 80, 1),
    ("extension chars count twice: 80 + 1", "€" * 80 + "a", 2),
    ("every extension char", "^{}[]~|€\\" + "a" * 142, 1),
    ("every extension char + 1", "^{}[]~|€\\" + "a" * 143, 2),
    ("escape pair never split", "a" * 152 + "€" + "a" * 152, 3),
    ("emoji 35 = 70 units", EMOJI * 35, 1),
    ("emoji 35 + 1", EMOJI * 35 + "a", 2),
    ("emoji pair never split", "ж" * 66 + EMOJI + "ж" * 66, 3),
    ("one emoji makes it UCS-2", "a" * 69 + EMOJI, 2),
    ("CRLF is two GSM-7 chars: 160", "a" * 158 + "\r\n", 1),
    ("CRLF is two GSM-7 chars: 161", "a" * 159 + "\r\n", 2),
    ("CRLF in UCS-2: 70", "ж" * 68 + "\r\n", 1),
    ("CRLF in UCS-2: 71", "ж" * 69 + "\r\n", 2),
    ("1600 characters", "a" * 1600, 11),
]


@pytest.mark.parametrize(("body", "segments"), [e[1:] for e in EDGES], ids=[e[0] for e in EDGES])
def test_simulator_and_smslink_count_the_same_segments(
    recording_sim: RecordingSimulator, body: str, segments: int
) -> None:
    assert count_segments(body).segments == segments  # Twilio's rules, as smslink counts
    created = recording_sim.send("+14155550100", body)
    assert created["body"] == body  # CR, LF and surrogate pairs survived the form encoding
    assert created["num_segments"] == str(segments)
