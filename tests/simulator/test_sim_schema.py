"""Responses checked against the official OpenAPI description of the 2010 API.

A small validator for the subset of JSON Schema the spec uses (type, nullable, pattern,
lengths, enum, $ref, properties, items) keeps this free of extra dependencies.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from simkit import ACCOUNT_SID, SERVICE_SID, Sim

from smslink.simulator import SimulatorConfig

SPEC_PATH = Path("/work/shared/twilio/twilio_api_v2010.json")
_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "object": dict,
    "array": list,
    "boolean": bool,
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip("OpenAPI spec not available")
    return json.loads(SPEC_PATH.read_text())


def _problems(spec: dict[str, Any], schema: dict[str, Any], value: Any, at: str) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _problems(spec, spec["components"]["schemas"][name], value, at)
    if value is None:
        return [] if schema.get("nullable") else [f"{at}: null not allowed"]
    expected = _TYPES.get(schema.get("type", ""), object)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return [f"{at}: {value!r} is not {schema['type']}"]
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{at}: {value!r} not in enum")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{at}: {value!r} does not match {schema['pattern']}")
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9):
            found.append(f"{at}: length of {value!r}")
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        found += [f"{at}.{key}: not in spec" for key in value if key not in props]
        for key, sub in props.items():
            if key in value:
                found += _problems(spec, sub, value[key], f"{at}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += _problems(spec, schema["items"], item, f"{at}[{i}]")
    return found


def _response_schema(spec: dict[str, Any], path: str, method: str, status: str) -> dict:
    operation = spec["paths"][path][method]
    return operation["responses"][status]["content"]["application/json"]["schema"]


def test_message_list_and_account_match_the_spec(start_sim, spec: dict[str, Any]) -> None:
    sim: Sim = start_sim(SimulatorConfig(queued_s=0.02, sending_s=0.02, sent_s=0.02))
    base = "/2010-04-01/Accounts/{AccountSid}"
    created = [
        sim.send("+14155550100"),
        sim.send("+14155550101", "😀", MessagingServiceSid=SERVICE_SID),
        sim.send("+14155550102", MediaUrl="https://example.com/a.png"),
    ]
    create_schema = _response_schema(spec, f"{base}/Messages.json", "post", "201")
    for msg in created:
        assert _problems(spec, create_schema, msg, "create") == []
    time.sleep(0.1)
    fetch_schema = _response_schema(spec, f"{base}/Messages/{{Sid}}.json", "get", "200")
    for msg in created:
        _, fetched = sim.http("GET", msg["uri"])
        assert _problems(spec, fetch_schema, fetched, "fetch") == []
    list_schema = _response_schema(spec, f"{base}/Messages.json", "get", "200")
    _, page = sim.http("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?PageSize=2")
    assert _problems(spec, list_schema, page, "list") == []
    account_schema = _response_schema(spec, "/2010-04-01/Accounts/{Sid}.json", "get", "200")
    _, account = sim.http("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}.json")
    assert _problems(spec, account_schema, account, "account") == []
