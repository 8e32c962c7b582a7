"""One raw HTTP call with optional Basic auth, answering (status, JSON) even for errors.

Tests that must see exact status codes and bodies as sent on the wire (not as an SDK
interprets them) share this, whichever server they talk to.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def call_json(
    method: str,
    url: str,
    data: dict[str, Any] | None = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 5,
) -> tuple[int, Any]:
    """`data` is form-encoded (lists repeat the name); an HTTP error still returns its body."""
    body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())
