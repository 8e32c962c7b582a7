"""The vendored copies of Twilio's spec and bodies are exactly the team's `shared/twilio/`."""

from __future__ import annotations

import gzip

import pytest

from tests.conformance.twilio_spec import EXAMPLES, SHARED, SPEC_PATH


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared/twilio beside this checkout")
def test_vendored_twilio_artifacts_match_the_shared_originals() -> None:
    shared_spec = (SHARED / "twilio_api_v2010.json").read_bytes()
    assert gzip.decompress(SPEC_PATH.read_bytes()) == shared_spec
    shared_examples = sorted(p.name for p in (SHARED / "examples").glob("*.json"))
    assert sorted(p.name for p in EXAMPLES.glob("*.json")) == shared_examples
    for name in shared_examples:
        assert (EXAMPLES / name).read_bytes() == (SHARED / "examples" / name).read_bytes()
