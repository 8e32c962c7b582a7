"""The REST API for touchpoints: list, create, read, change, copy and delete them; count a
message the way a send bills it; read the columns of a sample audience.

Marketers and administrators alike (`marketer`): a bearer token, or a page's session whose
state-changing requests carry `X-CSRF-Token`. Problems come back in the one error shape
(web/errors.py), each naming its field: `name`, `connection`, `message`, `phone_column`,
`mapping.<Placeholder>`, and `file` for a sample audience.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from smslink.app import NotFound
from smslink.app.touchpoints import (
    MAX_INSPECT_CHARS,
    MAX_SAMPLE_BYTES,
    MessageInfo,
    SampleColumns,
    TouchpointChanges,
    Touchpoints,
)
from smslink.domain.errors import InvalidInput, Problem
from smslink.domain.models import Touchpoint
from smslink.web.api.common import ProblemOut, api_router, errors, marketer, smslink
from smslink.web.errors import problem_json

router = api_router("touchpoints")

#: A sample upload's multipart envelope around the file: boundaries, headers, fields.
_ENVELOPE_BYTES = 16 * 1024


# -- models --------------------------------------------------------------------------


class TouchpointIn(BaseModel):
    """A new touchpoint: its message, the connection that sends it, and where the phone
    number and each placeholder's value come from in the audience."""

    name: str = Field(examples=["spring-sale"])
    connection: str = Field(examples=["production"])
    message: str = Field(examples=["Hi <FirstName>, 20% off in <City> today!"])
    phone_column: str = Field(examples=["Mobile"])
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="placeholder -> audience column, one for each placeholder",
        examples=[{"FirstName": "first_name", "City": "city"}],
    )


class TouchpointChangesIn(BaseModel):
    """What to change; a field left out stays as it is. A new `mapping` replaces the whole
    mapping; a new `message` without one keeps the mappings its placeholders still use."""

    connection: str | None = None
    message: str | None = None
    phone_column: str | None = None
    mapping: dict[str, str] | None = None


class CopyIn(BaseModel):
    """The name of the copy."""

    name: str = Field(examples=["spring-sale-2"])


class TouchpointOut(BaseModel):
    name: str
    connection: str
    message: str
    phone_column: str
    mapping: dict[str, str]
    placeholders: list[str] = Field(description="the message's placeholders, in order")
    encoding: str = Field(description="GSM-7 or UCS-2, of the message as written")
    segments: int = Field(description="segments of the message as written")

    @classmethod
    def of(cls, t: Touchpoint) -> TouchpointOut:
        info = Touchpoints.inspect(t.message[:MAX_INSPECT_CHARS])
        return cls(
            name=t.name,
            connection=t.connection,
            message=t.message,
            phone_column=t.phone_column,
            mapping=dict(t.mapping),
            placeholders=list(info.placeholders),
            encoding=info.encoding,
            segments=info.segments,
        )


class TouchpointUpdatedOut(TouchpointOut):
    dropped: list[str] = Field(
        default_factory=list,
        description="placeholders whose mapping was dropped: the new message lacks them",
    )


class InspectIn(BaseModel):
    message: str = Field(examples=["Hi <FirstName>, it\u2019s 20% off today \U0001f389"])


class ForcingOut(BaseModel):
    """A character that makes the whole message UCS-2."""

    char: str
    code: str = Field(examples=["U+2019"])
    name: str = Field(examples=["RIGHT SINGLE QUOTATION MARK"])
    count: int
    replacement: str | None = Field(
        description='GSM-7 text that looks the same ("" for an invisible one), or null'
    )


class PartOut(BaseModel):
    text: str
    ucs2: bool = Field(description="these characters force UCS-2 (to highlight)")


class MessageInfoOut(BaseModel):
    """A message as typed, counted the way a send bills it; each placeholder is counted as
    its own name, since each recipient's value differs."""

    ok: bool = Field(description="the message can be saved as it is")
    placeholders: list[str]
    max_placeholders: int
    characters: int
    units: int = Field(description="septets (GSM-7) or UTF-16 code units (UCS-2)")
    encoding: str = Field(examples=["GSM-7"])
    segments: int
    single_segment: int = Field(description="units in one segment: 160 or 70")
    per_segment: int = Field(description="units per segment of a longer message: 153 or 67")
    capacity: int = Field(description="units that fit in the segments it takes now")
    forcing: list[ForcingOut]
    doubled: list[str] = Field(description="GSM-7 extension characters: two septets each")
    parts: list[PartOut]
    problems: list[ProblemOut]

    @classmethod
    def of(cls, info: MessageInfo) -> MessageInfoOut:
        return cls(
            ok=info.ok,
            placeholders=list(info.placeholders),
            max_placeholders=info.max_placeholders,
            characters=info.characters,
            units=info.units,
            encoding=info.encoding,
            segments=info.segments,
            single_segment=info.single_segment,
            per_segment=info.per_segment,
            capacity=info.capacity,
            forcing=[
                ForcingOut(
                    char=f.char,
                    code=f.code,
                    name=f.name,
                    count=f.count,
                    replacement=f.replacement,
                )
                for f in info.forcing
            ],
            doubled=list(info.doubled),
            parts=[PartOut(text=text, ucs2=ucs2) for text, ucs2 in info.parts()],
            problems=[ProblemOut.model_validate(problem_json(p)) for p in info.problems],
        )


class ColumnsOut(BaseModel):
    """The columns of a sample audience, for a field mapping."""

    name: str = Field(description="the file's name")
    columns: list[str]
    examples: dict[str, str] = Field(description="column -> its first non-empty value")
    records: int = Field(description="records read (the first few only)")
    format: str = Field(examples=["csv"])
    delimiter: str | None
    encoding: str
    warning: str | None = Field(description="a problem in a record read; a send meets it too")
    suggested_phone: str | None = Field(description="the column that looks like the phone")
    suggested: dict[str, str] = Field(description="placeholder -> the column named like it")

    @classmethod
    def of(cls, s: SampleColumns) -> ColumnsOut:
        return cls(
            name=s.name,
            columns=list(s.columns),
            examples=dict(s.examples),
            records=s.records,
            format=s.format,
            delimiter=s.delimiter,
            encoding=s.encoding,
            warning=s.warning,
            suggested_phone=s.suggested_phone,
            suggested=dict(s.suggested),
        )


# -- endpoints -----------------------------------------------------------------------


@router.get("/touchpoints", response_model=list[TouchpointOut])
def list_touchpoints(request: Request) -> list[TouchpointOut]:
    """Every touchpoint, by name."""
    marketer(request)
    return [TouchpointOut.of(t) for t in smslink(request).touchpoints.list()]


@router.post("/touchpoints", status_code=201, response_model=TouchpointOut, responses=errors(409))
def create_touchpoint(request: Request, body: TouchpointIn) -> TouchpointOut:
    """Create a touchpoint; every problem comes back at once, by field."""
    marketer(request)
    app = smslink(request)
    touchpoint = Touchpoint(
        name=body.name,
        connection=body.connection,
        message=body.message,
        phone_column=body.phone_column.strip(),
        mapping={p: c.strip() for p, c in body.mapping.items()},
    )
    problems = app.touchpoints.problems(touchpoint, new=True)
    if problems:
        raise InvalidInput(problems=problems)
    return TouchpointOut.of(app.touchpoints.add(touchpoint))


# Before /touchpoints/{name}: "inspect" is no touchpoint's page.
@router.post("/touchpoints/inspect", response_model=MessageInfoOut)
def inspect_message(request: Request, body: InspectIn) -> MessageInfoOut:
    """Count a message as a send would bill it: placeholders, characters, encoding,
    segments, the characters that force UCS-2, and why it could not be saved (`problems`,
    an answer, not an error). Stores nothing."""
    marketer(request)
    return MessageInfoOut.of(Touchpoints.inspect(body.message))


@router.get("/touchpoints/{name:path}", response_model=TouchpointOut, responses=errors(404))
def get_touchpoint(request: Request, name: str) -> TouchpointOut:
    marketer(request)
    return TouchpointOut.of(smslink(request).touchpoints.show(name))


@router.put("/touchpoints/{name:path}", response_model=TouchpointUpdatedOut, responses=errors(404))
def update_touchpoint(request: Request, name: str, body: TouchpointChangesIn) -> Any:
    """Change a touchpoint; fields left out stay as they are. Runs already started keep
    the message they started with."""
    marketer(request)
    app = smslink(request)
    app.touchpoints.show(name)  # 404 for a touchpoint that is not there
    changes = TouchpointChanges(
        connection=body.connection,
        message=body.message,
        phone_column=body.phone_column,
        mapping=(None if body.mapping is None else {p: c.strip() for p, c in body.mapping.items()}),
    )
    try:
        updated = app.touchpoints.update(name, changes)
    except NotFound as error:  # the touchpoint is there, so its new connection is not
        raise InvalidInput(problems=[Problem("connection", error.args[0])]) from None
    out = TouchpointOut.of(updated.touchpoint)
    return TouchpointUpdatedOut(**out.model_dump(), dropped=list(updated.dropped))


@router.delete(
    "/touchpoints/{name:path}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409),
)
def delete_touchpoint(request: Request, name: str) -> Response:
    """Delete a touchpoint; runs that used it keep their own copy."""
    marketer(request)
    smslink(request).touchpoints.remove(name)
    return Response(status_code=204)


@router.post(
    "/touchpoints/{name:path}/copy",
    status_code=201,
    response_model=TouchpointOut,
    responses=errors(404, 409),
)
def copy_touchpoint(request: Request, name: str, body: CopyIn) -> TouchpointOut:
    """A new touchpoint with the connection, message and mapping of `name`."""
    marketer(request)
    app = smslink(request)
    source = app.touchpoints.show(name)
    draft = Touchpoint(
        body.name, source.connection, source.message, source.phone_column, dict(source.mapping)
    )
    problems = [p for p in app.touchpoints.problems(draft, new=True) if p.field == "name"]
    if problems:
        raise InvalidInput(problems=problems)
    return TouchpointOut.of(app.touchpoints.copy(name, body.name))


_COLUMNS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": (
                                f"the sample (.csv, .tsv, .txt, .jsonl, .ndjson), at most "
                                f"{MAX_SAMPLE_BYTES} bytes: the start of a bigger file will do"
                            ),
                        },
                        "encoding": {
                            "type": "string",
                            "description": "e.g. cp1252; UTF-8/16/32 are recognised",
                        },
                        "partial": {
                            "type": "boolean",
                            "description": "the file is the start of a bigger one",
                        },
                        "placeholder": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "placeholders to suggest a column for",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/audiences/columns",
    response_model=ColumnsOut,
    tags=["audiences"],
    openapi_extra=_COLUMNS_BODY,
)
async def audience_columns(request: Request) -> ColumnsOut:
    """The columns of a sample audience (multipart upload, field `file`), read the way a
    send reads an audience, with an example value each and suggestions for the phone
    number and each `placeholder`. The file is read once and not kept."""
    marketer(request)
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise InvalidInput(problems=[Problem("file", "send the sample with a Content-Length")])
    if int(length) > MAX_SAMPLE_BYTES + _ENVELOPE_BYTES:
        raise InvalidInput(problems=[_too_large()])
    async with request.form(max_files=1, max_fields=64) as fields:
        upload = fields.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput(problems=[Problem("file", "no file: send it in the field 'file'")])
        data = await upload.read(MAX_SAMPLE_BYTES + 1)
        if len(data) > MAX_SAMPLE_BYTES:
            raise InvalidInput(problems=[_too_large()])
        encoding = fields.get("encoding")
        partial = fields.get("partial")
        placeholders = [p for p in fields.getlist("placeholder") if isinstance(p, str)]
        sample = Touchpoints.sample_columns(
            data,
            upload.filename,
            encoding=encoding.strip() if isinstance(encoding, str) and encoding.strip() else None,
            partial=isinstance(partial, str) and partial.lower() in ("1", "true", "on", "yes"),
            placeholders=placeholders,
        )
    return ColumnsOut.of(sample)


def _too_large() -> Problem:
    return Problem(
        "file",
        f"the sample is larger than {MAX_SAMPLE_BYTES:,} bytes: send its first rows only",
    )
