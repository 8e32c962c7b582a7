"""JSON at orjson's speed, with the json module's verdicts.

Every Twilio answer and every stored record goes through here, so the cost counts
(orjson reads a 1,000-message page in ~1.2 ms against ~2.3 ms, and writes a record's row
in a third of the time: bench/RESULTS.md section 15). What orjson refuses but the json
module takes (a byte-order mark, a lone surrogate, a key that is not a string) goes to
the json module, and what the json module refuses (datetimes, dataclasses) stays refused:
switching parsers changed no answer and no stored text.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: Types orjson would write but the json module refuses are handed on (and refused).
_AS_JSON_MODULE = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def loads(text: str | bytes) -> Any:
    """Parse JSON; ValueError when it is not JSON."""
    try:
        return orjson.loads(text)
    except ValueError:  # orjson.JSONDecodeError is one
        return json.loads(text)


def dumps(value: object) -> str:
    """Compact JSON with non-ASCII kept as is (the json module's
    `ensure_ascii=False, separators=(",", ":")`); TypeError for what it cannot write."""
    try:
        return orjson.dumps(value, option=_AS_JSON_MODULE).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
