"""The marketer's touchpoint pages: the list, the wizard of the original product (page 1
*Message*, **Next**, page 2 *Field mapping*, **Save**), a touchpoint with its mapping, copy
and delete.

The wizard keeps no state on the server between its pages: page 2 carries what page 1
said in hidden fields and checks it again, and going back carries the mapping typed so
far. Page 1's counts (placeholders, characters, encoding, segments, the characters that
force UCS-2) are the application's `Touchpoints.inspect`, shown by the server on every
render and kept live by static/wizard.js through `POST /api/touchpoints/inspect`. Page 2's
column choices come from a sample audience: uploaded by wizard.js to
`POST /api/audiences/columns`, or without JavaScript posted with the form ("Read
columns"); the file is read once and never kept.

Marketers and administrators may do all of this (`signed_in`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from smslink.app.touchpoints import (
    MAX_INSPECT_CHARS,
    MAX_SAMPLE_BYTES,
    MessageInfo,
    SampleColumns,
    TouchpointChanges,
    Touchpoints,
)
from smslink.domain.errors import InvalidInput
from smslink.domain.models import Touchpoint, User
from smslink.web.i18n import _, file_size
from smslink.web.pages.common import field_errors, form, redirect, signed_in, smslink, text
from smslink.web.templating import render

router = APIRouter(include_in_schema=False)

#: The fields of page 1; problems of the others belong to page 2.
MESSAGE_FIELDS = ("name", "connection", "message")
#: Largest wizard form: a sample audience (only the no-JavaScript "Read columns" posts
#: one) plus the rest of the form.
MAX_FORM_BYTES = MAX_SAMPLE_BYTES + 64 * 1024
#: Encodings offered for a sample that is not UTF-8 (UTF-16 and UTF-32 with a BOM, and
#: UTF-8 with or without one, are recognised without asking).
ENCODINGS = ("cp1252", "latin-1", "cp1250", "mac-roman", "utf-16")


@dataclass
class Draft:
    """What the wizard's forms say, as typed (trimmed where the domain trims)."""

    name: str = ""
    connection: str = ""
    message: str = ""
    phone_column: str = ""
    mapping: dict[str, str] = field(default_factory=dict)
    #: Columns of a sample read earlier (carried so a re-rendered page keeps its choices).
    columns: list[str] = field(default_factory=list)
    sample_name: str = ""

    @classmethod
    def of(cls, t: Touchpoint) -> Draft:
        return cls(t.name, t.connection, t.message, t.phone_column, dict(t.mapping))

    def touchpoint(self, placeholders: tuple[str, ...] | None = None) -> Touchpoint:
        """The touchpoint to store: the mapping of `placeholders` only (the rows page 2
        shows), all of it when None."""
        mapping = self.mapping
        if placeholders is not None:
            mapping = {p: self.mapping.get(p, "") for p in placeholders}
        return Touchpoint(self.name, self.connection, self.message, self.phone_column, mapping)


def _draft(fields: dict[str, Any], existing: Touchpoint | None) -> Draft:
    # Browsers send a textarea's line breaks as CRLF; the marketer typed one character.
    message = text(fields, "message").replace("\r\n", "\n")
    mapping = {
        key.removeprefix("mapping."): text(fields, key).strip()
        for key in fields
        if key.startswith("mapping.")
    }
    columns: list[str] = []
    try:
        carried = json.loads(text(fields, "columns_json") or "[]")
    except ValueError:
        carried = []
    if isinstance(carried, list):
        columns = [c for c in carried if isinstance(c, str)][:500]
    return Draft(
        name=existing.name if existing else text(fields, "name"),
        connection=text(fields, "connection"),
        message=message,
        phone_column=text(fields, "phone_column").strip(),
        mapping=mapping,
        columns=columns,
        sample_name=text(fields, "sample_name"),
    )


# -- the list ------------------------------------------------------------------------


@router.get("/touchpoints")
def list_page(request: Request) -> Response:
    user = signed_in(request)
    app = smslink(request)
    touchpoints = app.touchpoints.list()
    return render(
        request,
        "touchpoints/list.html",
        user,
        touchpoints=touchpoints,
        infos={t.name: _info(t.message) for t in touchpoints},
        has_connections=bool(app.connections.list()),
        removed=request.query_params.get("removed") == "1",
    )


# -- the wizard ----------------------------------------------------------------------


@router.get("/touchpoints/new")
def new_page(request: Request) -> Response:
    user = signed_in(request)
    draft = Draft()
    connections = smslink(request).connections.list()
    if len(connections) == 1:
        draft.connection = connections[0].name
    return _message_page(request, user, draft, None)


@router.post("/touchpoints/new")
async def new_step(request: Request) -> Response:
    return await _step(request, None)


@router.get("/touchpoints/{name:path}/edit")
def edit_page(request: Request, name: str) -> Response:
    user = signed_in(request)
    existing = smslink(request).touchpoints.show(name)
    return _message_page(request, user, Draft.of(existing), existing)


@router.post("/touchpoints/{name:path}/edit")
async def edit_step(request: Request, name: str) -> Response:
    existing = smslink(request).touchpoints.show(name)
    return await _step(request, existing)


async def _step(request: Request, existing: Touchpoint | None) -> Response:
    """One step of the wizard: `next` (page 1 to 2), `back`, `columns` (read a sample
    without JavaScript) or `save`."""
    user = signed_in(request)
    if _too_large(request):
        return render(
            request,
            "message.html",
            user,
            status_code=413,
            title=_("The sample is too large"),
            message=_(
                "A sample audience may have at most %(size)s. Go back and choose a smaller "
                "file: the first rows of the audience are enough.",
                size=file_size(MAX_SAMPLE_BYTES),
            ),
        )
    posted = await form(request)
    try:
        draft = _draft(posted, existing)
        step = text(posted, "step")
        if step == "back":
            return _message_page(request, user, draft, existing)
        if step == "next":
            return _next(request, user, draft, existing)
        if step == "columns":
            return await _read_columns(request, user, draft, existing, posted)
        return _save(request, user, draft, existing)
    finally:
        for value in posted.values():
            if isinstance(value, UploadFile):
                await value.close()


def _next(request: Request, user: User, draft: Draft, existing: Touchpoint | None) -> Response:
    app = smslink(request)
    problems = [
        p
        for p in app.touchpoints.problems(draft.touchpoint(), new=existing is None)
        if p.field in MESSAGE_FIELDS
    ]
    if problems:
        errors, general = field_errors(InvalidInput(problems=problems))
        return _message_page(request, user, draft, existing, errors, general, status_code=422)
    return _mapping_page(request, user, draft, existing)


async def _read_columns(
    request: Request,
    user: User,
    draft: Draft,
    existing: Touchpoint | None,
    posted: dict[str, Any],
) -> Response:
    upload = posted.get("sample")
    errors: dict[str, str] = {}
    sample: SampleColumns | None = None
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors["file"] = _("Choose a sample audience file first.")
    else:
        data = await upload.read(MAX_SAMPLE_BYTES + 1)
        placeholders = _info(draft.message).placeholders
        try:
            sample = Touchpoints.sample_columns(
                data,
                upload.filename,
                encoding=text(posted, "encoding") or None,
                placeholders=placeholders,
            )
        except InvalidInput as error:
            by_field, general = field_errors(error)
            errors = {"file": "; ".join([*by_field.values(), *general])}
    if sample is not None:
        draft.columns, draft.sample_name = list(sample.columns), sample.name
        if not draft.phone_column and sample.suggested_phone:
            draft.phone_column = sample.suggested_phone
        for placeholder, column in sample.suggested.items():
            if not draft.mapping.get(placeholder):
                draft.mapping[placeholder] = column
    status = 422 if errors else 200
    return _mapping_page(request, user, draft, existing, errors, sample=sample, status_code=status)


def _save(request: Request, user: User, draft: Draft, existing: Touchpoint | None) -> Response:
    app = smslink(request)
    placeholders = _info(draft.message).placeholders
    touchpoint = draft.touchpoint(placeholders)
    try:
        problems = app.touchpoints.problems(touchpoint, new=existing is None)
        if problems:
            raise InvalidInput(problems=problems)
        if existing is None:
            app.touchpoints.add(touchpoint)
        else:
            app.touchpoints.update(
                existing.name,
                TouchpointChanges(
                    connection=touchpoint.connection,
                    message=touchpoint.message,
                    phone_column=touchpoint.phone_column,
                    mapping=touchpoint.mapping,
                ),
            )
    except InvalidInput as error:  # NotFound and AlreadyExists too: someone was quicker
        errors, general = field_errors(error)
        return _mapping_page(request, user, draft, existing, errors, general, status_code=422)
    flag = "added" if existing is None else "saved"
    return redirect(f"/touchpoints/{_quote(touchpoint.name)}?{flag}=1")


def _message_page(
    request: Request,
    user: User,
    draft: Draft,
    existing: Touchpoint | None,
    errors: dict[str, str] | None = None,
    general: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    connections = smslink(request).connections.list()
    names = [c.name for c in connections]
    return render(
        request,
        "touchpoints/message.html",
        user,
        status_code=status_code,
        draft=draft,
        existing=existing,
        action=_action(existing),
        connections=connections,
        unknown_connection=draft.connection if draft.connection not in names else "",
        info=_info(draft.message),
        columns_json=json.dumps(draft.columns),
        errors=errors or {},
        general=general or [],
    )


def _mapping_page(
    request: Request,
    user: User,
    draft: Draft,
    existing: Touchpoint | None,
    errors: dict[str, str] | None = None,
    general: list[str] | None = None,
    *,
    sample: SampleColumns | None = None,
    status_code: int = 200,
) -> Response:
    info = _info(draft.message)
    return render(
        request,
        "touchpoints/mapping.html",
        user,
        status_code=status_code,
        draft=draft,
        existing=existing,
        action=_action(existing),
        info=info,
        rows=[(p, draft.mapping.get(p, "")) for p in info.placeholders],
        sample=sample,
        columns_json=json.dumps(draft.columns),
        encodings=ENCODINGS,
        max_sample_bytes=MAX_SAMPLE_BYTES,
        max_sample_size=file_size(MAX_SAMPLE_BYTES),
        errors=errors or {},
        general=general or [],
    )


# -- one touchpoint ------------------------------------------------------------------


@router.get("/touchpoints/{name:path}/copy")
def copy_page(request: Request, name: str) -> Response:
    user = signed_in(request)
    source = smslink(request).touchpoints.show(name)
    return _copy_page(request, user, source, _("%(name)s copy", name=source.name), {}, [])


@router.post("/touchpoints/{name:path}/copy")
async def copy(request: Request, name: str) -> Response:
    user = signed_in(request)
    posted = await form(request)
    app = smslink(request)
    source = app.touchpoints.show(name)
    new_name = text(posted, "name")
    try:
        problems = [
            p
            for p in app.touchpoints.problems(
                Touchpoint(
                    new_name,
                    source.connection,
                    source.message,
                    source.phone_column,
                    dict(source.mapping),
                ),
                new=True,
            )
            if p.field == "name"
        ]
        if problems:
            raise InvalidInput(problems=problems)
        copied = app.touchpoints.copy(name, new_name)
    except InvalidInput as error:
        errors, general = field_errors(error)
        return _copy_page(request, user, source, new_name, errors, general, status_code=422)
    return redirect(f"/touchpoints/{_quote(copied.name)}?copied=1")


def _copy_page(
    request: Request,
    user: User,
    source: Touchpoint,
    new_name: str,
    errors: dict[str, str],
    general: list[str],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "touchpoints/copy.html",
        user,
        status_code=status_code,
        touchpoint=source,
        new_name=new_name,
        errors=errors,
        general=general,
    )


@router.post("/touchpoints/{name:path}/delete")
async def delete(request: Request, name: str) -> Response:
    signed_in(request)
    await form(request)
    smslink(request).touchpoints.remove(name)
    return redirect("/touchpoints?removed=1")


@router.get("/touchpoints/{name:path}")
def show_page(request: Request, name: str) -> Response:
    user = signed_in(request)
    touchpoint = smslink(request).touchpoints.show(name)
    flags = request.query_params
    return render(
        request,
        "touchpoints/show.html",
        user,
        touchpoint=touchpoint,
        info=_info(touchpoint.message),
        added=flags.get("added") == "1",
        saved=flags.get("saved") == "1",
        copied=flags.get("copied") == "1",
    )


# -- helpers -------------------------------------------------------------------------


def _info(message: str) -> MessageInfo:
    """The message's counts. A text beyond anything sendable is counted as far as the
    application looks at one; what is left of it is still far too long, so its problem
    says so."""
    return Touchpoints.inspect(message[:MAX_INSPECT_CHARS])


def _too_large(request: Request) -> bool:
    length = request.headers.get("content-length", "")
    return length.isdigit() and int(length) > MAX_FORM_BYTES


def _action(existing: Touchpoint | None) -> str:
    return "/touchpoints/new" if existing is None else f"/touchpoints/{_quote(existing.name)}/edit"


def _quote(name: str) -> str:
    return quote(name, safe="")
