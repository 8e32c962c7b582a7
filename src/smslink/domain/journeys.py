"""What a journey sends smslink, and what it gets back for each record.

A journey hands over records as customers reach a step: `{"identity": {...}, "fields":
{...}}`, one at a time or up to MAX_RECORDS in `{"records": [...]}`. `identity` names the
customer (the journey's audience key, e.g. CustomerID) and comes back on every event of
the delivery; `fields` are the values the touchpoint's mapping reads (the phone column and
one per placeholder). A mapping may also read an identity field: the record's values are
both together, and a name in both must have one value.

Each record gets an answer (`RecordAnswer`), in the request's order:
- `queued`: stored, and will be sent; `id` is its delivery;
- `error`: stored as final without sending (a bad phone, an empty placeholder, an opted-out
  recipient), with the message its results row and its one event carry;
- `rejected`: not stored at all, because the record itself cannot be read (no identity, a
  value that is not text); `field` says where. It has no id and no event.
`repeated` marks the answer to a record (or request) smslink had already taken: the first
answer again, and nothing sent twice.

The envelope (not JSON, no records, too many) refuses the whole request instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from smslink.domain.errors import InvalidInput, Problem, say

#: The most records one request may carry.
MAX_RECORDS = 500
#: The most identity fields, and the most fields, one record may have.
MAX_FIELDS = 50
#: The longest field name and value (a message is at most 1,600 characters anyway).
MAX_NAME_CHARS = 200
MAX_VALUE_CHARS = 1600
#: The longest Idempotency-Key (Stripe and the IETF draft use 255).
MAX_KEY_CHARS = 255

QUEUED = "queued"
ERROR = "error"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class JourneyRecord:
    """One record as a journey sent it, with every value as text."""

    identity: dict[str, str]
    fields: dict[str, str]

    @property
    def values(self) -> dict[str, str]:
        """What the touchpoint's mapping reads: the fields and the identity together."""
        return {**self.identity, **self.fields}

    @property
    def identity_key(self) -> str:
        """The record's key within its touchpoint when no Idempotency-Key is given: the
        SHA-256 of its identity in canonical JSON (sorted names, no spaces), so the same
        customer sent twice is the same key whatever order its fields came in."""
        canonical = json.dumps(self.identity, sort_keys=True, separators=(",", ":"))
        return "identity:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RecordAnswer:
    """What one record of a request became (see the module docstring)."""

    status: str
    id: str | None = None
    error_code: int | None = None
    errormessage: str | None = None
    field: str | None = None
    repeated: bool = False

    def stored_as(self, delivery_id: str) -> RecordAnswer:
        return replace(self, id=delivery_id)

    def repeated_answer(self) -> RecordAnswer:
        return replace(self, repeated=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "error_code": self.error_code,
            "errormessage": self.errormessage,
            "field": self.field,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordAnswer:
        return cls(
            status=str(data["status"]),
            id=data.get("id"),
            error_code=data.get("error_code"),
            errormessage=data.get("errormessage"),
            field=data.get("field"),
        )


@dataclass(frozen=True, slots=True)
class Replay:
    """The answers to a request whose Idempotency-Key was seen before: the first ones."""

    answers: list[RecordAnswer]


def read_request(body: object) -> list[JourneyRecord | RecordAnswer]:
    """The records of a request body, each read or rejected (a RecordAnswer saying why).

    Raises InvalidInput (field "body" or "records") when the envelope itself is wrong."""
    if isinstance(body, dict) and "records" in body:
        if set(body) != {"records"}:
            raise _envelope("body", say('give either one record or {"records": [...]}, not both'))
        raw = body["records"]
        if not isinstance(raw, list):
            raise _envelope("records", say("records must be a list of records"))
        if not raw:
            raise _envelope("records", say("records is empty: there is nothing to send"))
        if len(raw) > MAX_RECORDS:
            raise _envelope(
                "records",
                say(
                    "%(count)s records in one request; at most %(most)s: split them",
                    count=len(raw),
                    most=MAX_RECORDS,
                ),
            )
        return [read_record(item, f"records[{n}]") for n, item in enumerate(raw)]
    if isinstance(body, dict):
        return [read_record(body, "")]
    raise _envelope(
        "body",
        say('send one record {"identity": {...}, "fields": {...}} or {"records": [...]}'),
    )


def read_record(raw: object, where: str) -> JourneyRecord | RecordAnswer:
    """One record, or the answer that rejects it naming the field to fix."""
    prefix = f"{where}." if where else ""
    if not isinstance(raw, dict):
        return _rejected(where or "body", 'a record is {"identity": {...}, "fields": {...}}')
    unknown = sorted(set(raw) - {"identity", "fields"})
    if unknown:
        return _rejected(
            f"{prefix}{unknown[0]}" if unknown[0] else where or "body",
            f"unknown key '{unknown[0][:MAX_NAME_CHARS]}': a record has only identity and fields",
        )
    identity = _text_map(raw.get("identity"), f"{prefix}identity")
    if isinstance(identity, RecordAnswer):
        return identity
    if not identity:
        return _rejected(
            f"{prefix}identity",
            "identity is empty: give the fields that name the customer (e.g. CustomerID); "
            "they come back with every event and make a repeated record harmless",
        )
    fields = _text_map(raw.get("fields", {}), f"{prefix}fields")
    if isinstance(fields, RecordAnswer):
        return fields
    for name, value in fields.items():
        if name in identity and identity[name] != value:
            return _rejected(
                f"{prefix}fields.{name}",
                f"'{name}' is in identity and in fields with different values: give it once",
            )
    return JourneyRecord(identity, fields)


def request_sha256(records: list[JourneyRecord | RecordAnswer]) -> str:
    """A request's fingerprint, to tell a retry (same records) from a reused key."""
    canonical = [
        [r.identity, r.fields] if isinstance(r, JourneyRecord) else r.to_json() for r in records
    ]
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def check_idempotency_key(key: str) -> str:
    """The header's key as stored ("request:<key>"); InvalidInput when it cannot be one."""
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise InvalidInput(
            problems=[
                Problem(
                    "Idempotency-Key",
                    say(
                        "an Idempotency-Key is 1 to %(most)s printable characters (a UUID "
                        "is a good one)",
                        most=MAX_KEY_CHARS,
                    ),
                )
            ]
        )
    return "request:" + key


def _text_map(raw: object, where: str) -> dict[str, str] | RecordAnswer:
    """An object of names to text; numbers and booleans become text, null empty text."""
    if not isinstance(raw, dict):
        return _rejected(where, f"{where.rsplit('.', 1)[-1]} must be an object of names to values")
    if len(raw) > MAX_FIELDS:
        return _rejected(where, f"{len(raw)} fields; at most {MAX_FIELDS}")
    values: dict[str, str] = {}
    for name, value in raw.items():
        if not name.strip() or len(name) > MAX_NAME_CHARS or not _storable(name):
            return _rejected(
                where, f"a field name is 1 to {MAX_NAME_CHARS} characters of text, not blank"
            )
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            return _rejected(
                f"{where}.{name}", f"'{name}' must be text or a number, not a list or object"
            )
        if not _storable(text):
            return _rejected(
                f"{where}.{name}",
                f"'{name}' holds characters that are not text (NUL, lone surrogates)",
            )
        if len(text) > MAX_VALUE_CHARS:
            return _rejected(
                f"{where}.{name}", f"'{name}' is {len(text)} characters; at most {MAX_VALUE_CHARS}"
            )
        values[name] = text
    return values


def _storable(text: str) -> bool:
    """Text a database and a results file can hold: no NUL, no lone surrogates (which JSON
    can carry but UTF-8 cannot)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _rejected(field: str, message: str) -> RecordAnswer:
    return RecordAnswer(REJECTED, field=field, errormessage=message)


def _envelope(field: str, message: str) -> InvalidInput:
    return InvalidInput(problems=[Problem(field, message)])
