"""The one place the environment is read for timings."""

from __future__ import annotations

from smslink.app.config import Config


def test_the_lease_length_comes_from_the_environment_with_a_floor_and_a_default() -> None:
    assert Config.from_environment({}).timings.lease_ttl_s == 60.0
    assert Config.from_environment({"SMSLINK_LEASE_TTL_S": "3"}).timings.lease_ttl_s == 3.0
    assert Config.from_environment({"SMSLINK_LEASE_TTL_S": "0.1"}).timings.lease_ttl_s == 1.0
    assert Config.from_environment({"SMSLINK_LEASE_TTL_S": "soon"}).timings.lease_ttl_s == 60.0
