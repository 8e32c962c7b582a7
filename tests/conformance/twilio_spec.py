"""Twilio's official OpenAPI description (twilio_api_v2010.json) as the referee of the wire.

openapi-core judges each recorded exchange: the request's path, query, form body and Basic
auth against the operation, the answer against the declared response. It loads this 1.9 MB
OpenAPI 3.0.1 document as it is and validates the document itself first, which takes about
2.5 s, so the conformance suite builds one `TwilioSpec` per session.

Stricter than openapi-core's defaults, because Twilio's clients are stricter than the spec:
- every property a response schema declares must be present (real bodies carry all of them;
  the SDK reads them all), and no undeclared one may appear (the SDK takes any extra
  top-level key of a page for the item list);
- Twilio's own formats are checked: `date-time-rfc-2822` (the one fixed GMT form Twilio
  writes), `phone-number` and `currency`;
- every query parameter and form field a request sends must be declared by its operation.
To forbid undeclared keys the spec's `uri-map` objects (`subresource_uris`: a map of names to
URIs with no fixed keys) are made explicit as maps of strings before loading. That only
narrows what the spec accepts, so anything passing here passes the unmodified spec too.

The spec declares success answers only (no 4xx or 5xx anywhere in the document), so error
answers are judged against Twilio's documented error body `{code, message, more_info,
status}` (API.md; examples/error_examples.json holds real ones, checked against the same
schema in the tests), with openapi-schema-validator, the validator openapi-core uses itself.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import re
import time
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.conformance.recording import Exchange

#: Twilio's artifacts, copied byte for byte from the team's `shared/twilio/` (the public
#: twilio-oai repository, 2026-04) so a clean clone judges itself with nothing beside it:
#: the spec gzipped, the real bodies as they are. test_conf_vendored.py keeps them in step.
VENDORED = Path(__file__).resolve().parent / "twilio"
EXAMPLES = VENDORED / "examples"
SPEC_ENV = "TWILIO_OPENAPI_SPEC"  # another spec file (plain JSON) to judge by instead
SPEC_PATH = VENDORED / "twilio_api_v2010.json.gz"
#: The team's copy, beside the repository where it exists.
SHARED = Path(__file__).resolve().parents[3] / "shared" / "twilio"
#: The spec's only server. Paths resolve only under it, so requests recorded on a loopback
#: port are presented to openapi-core as if they had been sent to Twilio.
TWILIO_HOST = "https://api.twilio.com"

#: Twilio's error body (API.md, twilio.com/docs/errors): the spec itself declares none.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {
        "code": {"type": "integer", "minimum": 10000, "maximum": 99999},
        "message": {"type": "string", "minLength": 1},
        "more_info": {"type": "string", "pattern": r"^https://www\.twilio\.com/docs/errors/\d+$"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        # Real 20001 bodies carry it (examples/error_examples.json); optional.
        "details": {"type": "object", "nullable": True},
    },
    "additionalProperties": False,
}

_RFC2822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d \+0000$"
)
_PHONE = re.compile(
    r"^(?:[a-z]+:)?\+[1-9]\d{1,14}$"  # E.164, or a channel address such as whatsapp:+1...
    r"|^\d{3,8}$"  # a short code
    r"|^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$"  # an alphanumeric sender ID
)


def _is_rfc2822_gmt(value: object) -> bool:
    """Twilio's one date form (`Thu, 30 Jul 2015 20:12:31 +0000`), weekday included."""
    if not isinstance(value, str):
        return True
    if not _RFC2822.match(value):
        return False
    try:
        return format_datetime(parsedate_to_datetime(value)) == value
    except (TypeError, ValueError):
        return False


def _is_phone_number(value: object) -> bool:
    return not isinstance(value, str) or bool(_PHONE.match(value))


def _is_currency(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"[A-Za-z]{3}", value))


FORMATS = {
    "date-time-rfc-2822": _is_rfc2822_gmt,
    "phone-number": _is_phone_number,
    "currency": _is_currency,
}


def find_spec() -> Path | None:
    """The spec file, from $TWILIO_OPENAPI_SPEC or the vendored copy; None if absent."""
    path = Path(os.environ.get(SPEC_ENV) or SPEC_PATH)
    return path if path.is_file() else None


def read_spec(path: Path) -> dict[str, Any]:
    """The spec as JSON, gzipped or not."""
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def _with_typed_uri_maps(node: Any) -> Any:
    """A copy of the spec whose `uri-map` objects say they are maps of strings."""
    if isinstance(node, list):
        return [_with_typed_uri_maps(item) for item in node]
    if not isinstance(node, dict):
        return node
    patched = {key: _with_typed_uri_maps(value) for key, value in node.items()}
    if patched.get("format") == "uri-map" and "additionalProperties" not in patched:
        patched["additionalProperties"] = {"type": "string"}
    return patched


class _WireRequest:
    """A recorded request in openapi-core's Request protocol, addressed to Twilio's host."""

    def __init__(self, exchange: Exchange) -> None:
        self.host_url = TWILIO_HOST
        self.path = exchange.path
        self.method = exchange.method.lower()
        self.body = exchange.body or None
        self.content_type = exchange.headers.get("Content-Type", "").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(exchange.query), header=Headers(exchange.headers)
        )


class _WireResponse:
    """A recorded answer in openapi-core's Response protocol."""

    def __init__(self, exchange: Exchange) -> None:
        self.status_code = exchange.status
        self.content_type = exchange.content_type
        self.headers = Headers({"Content-Type": exchange.content_type})
        self.data = exchange.data


def _explain(error: BaseException) -> list[str]:
    """Readable reasons for an openapi-core error: each schema error with its JSON path."""
    found: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for sub in getattr(current, "schema_errors", None) or ():
            found.append(f"{sub.json_path}: {sub.message}")
        current = current.__cause__ or current.__context__
    return found or [f"{type(error).__name__}: {error}"]


class TwilioSpec:
    """The loaded spec and the checks the conformance tests ask of it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        started = time.perf_counter()
        self.api = OpenAPI.from_dict(
            _with_typed_uri_maps(copy.deepcopy(document)),
            config=Config(
                extra_format_validators=FORMATS,
                additional_properties_default_policy="forbid",
                response_properties_default_policy="required",
            ),
        )
        #: Seconds openapi-core took to load and validate the spec (reported by the suite).
        self.load_seconds = time.perf_counter() - started
        self._errors = OAS30Validator(ERROR_SCHEMA, format_checker=oas30_format_checker)
        self._operations = [
            (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"), item)
            for path, item in document["paths"].items()
        ]

    # -- requests -----------------------------------------------------------------------

    def request_problems(self, exchange: Exchange) -> list[str]:
        """Why the request breaks the spec: path, query, form body, security; [] if it holds."""
        found = [
            reason
            for error in self.api.iter_request_errors(_WireRequest(exchange))
            for reason in _explain(error)
        ]
        return found + self._undeclared(exchange)

    def _undeclared(self, exchange: Exchange) -> list[str]:
        """Query parameters and form fields the operation does not declare.

        openapi-core lets these through: OpenAPI has no way to forbid extra query
        parameters, and its form decoder reads only the declared fields. Twilio ignores
        them too, which is exactly why a misspelt `Pagesize` would go unnoticed.
        """
        operation = self._operation(exchange)
        if operation is None:
            return []  # openapi-core has already reported the unknown path or method
        params, form_fields = operation
        found = [
            f"query parameter {name!r} is not declared by the spec"
            for name, _ in exchange.query
            if name not in params
        ]
        if exchange.body and "x-www-form-urlencoded" in exchange.headers.get("Content-Type", ""):
            fields = parse_qsl(exchange.body.decode(), keep_blank_values=True)
            found += [
                f"form field {name!r} is not declared by the spec"
                for name, _ in fields
                if name not in form_fields
            ]
        return found

    def _operation(self, exchange: Exchange) -> tuple[set[str], set[str]] | None:
        """The declared query parameter names and form field names of the exchange's call."""
        for pattern, item in self._operations:
            if pattern.match(exchange.path):
                operation = item.get(exchange.method.lower())
                if operation is None:
                    return None
                params = [*item.get("parameters", ()), *operation.get("parameters", ())]
                content = operation.get("requestBody", {}).get("content", {})
                form = content.get("application/x-www-form-urlencoded", {}).get("schema", {})
                return (
                    {p["name"] for p in params if p.get("in") == "query"},
                    set(form.get("properties", ())),
                )
        return None

    # -- answers ------------------------------------------------------------------------

    def response_problems(self, exchange: Exchange) -> list[str]:
        """Why the answer breaks the spec (or Twilio's error shape); [] if it holds."""
        if exchange.status >= 400:
            return self.error_problems(exchange.json(), exchange.status)
        if exchange.content_type != "application/json":
            return [f"content type {exchange.content_type!r}, not application/json"]
        return [
            reason
            for error in self.api.iter_response_errors(
                _WireRequest(exchange), _WireResponse(exchange)
            )
            for reason in _explain(error)
        ]

    def error_problems(self, body: Any, http_status: int) -> list[str]:
        """Why an error body is not Twilio's `{code, message, more_info, status}`."""
        found = [f"{e.json_path}: {e.message}" for e in self._errors.iter_errors(body)]
        if isinstance(body, dict):
            if body.get("status") != http_status:
                found.append(f"$.status: {body.get('status')!r} but HTTP {http_status}")
            if not str(body.get("more_info", "")).endswith(f"/{body.get('code')}"):
                found.append("$.more_info: does not name the error's code")
        return found

    def exchange_problems(self, exchange: Exchange, *, requests: bool = True) -> list[str]:
        """Both directions of one exchange, each reason prefixed with the exchange."""
        found = self.response_problems(exchange)
        if requests:
            found = self.request_problems(exchange) + found
        return [f"{exchange}: {reason}" for reason in found]
