"""An audience uploaded to the service, for the new-run pages and `POST /api/runs` alike:
read within the size limit (a body announced or found too large is refused before it is
kept), copied in chunks into a private folder the application makes (`Runs.new_upload`),
checked and previewed with the very code a send uses (`Runs.preview`), the preview kept
beside it (`preview.json`), and on Send stored as a run (`Runs.start`, origin "web") and
handed to the service's executor."""

from __future__ import annotations

import asyncio
import codecs
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from smslink.app import NotFound, RunRequest, Smslink
from smslink.app.runs import Upload
from smslink.app.touchpoints import Preview
from smslink.domain.errors import InvalidInput, Problem
from smslink.web.forms import form
from smslink.web.i18n import _, file_size
from smslink.web.runner import ORIGIN, RunExecutor

#: How much of an upload is copied at a time.
CHUNK = 1024 * 1024
#: Room for the form's other fields and the multipart framing around the file.
FORM_SLACK = 64 * 1024
#: A body this much over the limit is not read to its end before the refusal is sent.
DRAIN_MAX = 64 * 1024 * 1024
_PREVIEW_FILE = "preview.json"


@dataclass
class Staged:
    """An upload waiting for Send: what it was checked against and what the check found."""

    touchpoint: str
    encoding: str
    name: str  # the file's name as the browser gave it
    size: int
    records: int = 0
    messages: int = 0
    segments: int = 0
    problem_count: int = 0
    by_encoding: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    #: The run it was sent as: a second Send (a double click, the back button) opens it.
    run_id: int | None = None

    def problems_by_reason(self) -> list[tuple[str, list[int]]]:
        """The listed problems grouped by their reason, in order of first appearance."""
        grouped: dict[str, list[int]] = {}
        for record, reason in self.problems:
            grouped.setdefault(reason, []).append(record)
        return list(grouped.items())

    @classmethod
    def of(cls, touchpoint: str, encoding: str, name: str, size: int, preview: Preview) -> Staged:
        t = preview.totals
        return cls(
            touchpoint=touchpoint,
            encoding=encoding,
            name=name,
            size=size,
            records=t.records,
            messages=t.messages,
            segments=t.segments,
            problem_count=t.problem_count,
            by_encoding=dict(t.by_encoding),
            rows=[asdict(row) for row in preview.rows],
            problems=[(n, str(reason)) for n, reason in t.problems],
        )

    def save(self, upload: Upload) -> None:
        (upload.folder / _PREVIEW_FILE).write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, upload: Upload) -> Staged:
        try:
            data = json.loads((upload.folder / _PREVIEW_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise NotFound(f"no upload {upload.id!r}") from None
        data["problems"] = [tuple(p) for p in data.get("problems", [])]
        return cls(**data)


class UploadTooLarge(Exception):
    """The request's body is larger than the service takes."""


def max_upload_bytes(request: Request) -> int:
    return int(request.app.state.options.max_upload_bytes)


def too_large_message(limit: int) -> str:
    return _(
        "The file is larger than %(size)s, the most this service takes. Split the audience "
        "into smaller files.",
        size=file_size(limit),
    )


async def limited_form(request: Request, limit: int, *, csrf: bool = True) -> dict[str, Any]:
    """`form(request)` (the CSRF token checked unless `csrf` is False: the API checks its
    caller itself), reading at most `limit` bytes of file plus
    the form's framing; UploadTooLarge beyond that. A body announced or found too large is
    read to its end and dropped first (up to `DRAIN_MAX` more), so that the browser, which
    sends it all before it reads an answer, sees the refusal rather than a reset."""
    limit += FORM_SLACK
    receive = request.receive
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        if int(length) - limit <= DRAIN_MAX:
            await _drain(receive)
        raise UploadTooLarge()
    seen = 0

    async def counted() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                if message.get("more_body", False):
                    await _drain(receive)
                raise UploadTooLarge()
        return message

    counted_request = Request(request.scope, counted)
    if csrf:
        return await form(counted_request)
    return dict((await counted_request.form()).items())


async def _drain(receive: Any) -> None:
    drained = 0
    while drained < DRAIN_MAX:
        message = await receive()
        drained += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def save_upload(app: Smslink, file: UploadFile, limit: int) -> Upload:
    """Copy an uploaded audience, a chunk at a time, into a new upload folder."""
    target = app.runs.new_upload(file.filename or "")
    size = 0
    try:
        with target.path.open("xb") as out:
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge()
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        app.runs.discard_upload(target)
        raise
    if size == 0:
        app.runs.discard_upload(target)
        raise InvalidInput(problems=[Problem("file", _("The file is empty."))])
    return target


async def stage_upload(app: Smslink, file: object, values: dict[str, str], limit: int) -> Upload:
    """Save the posted file and check it against the chosen touchpoint (the preview kept
    beside it); InvalidInput (by field: touchpoint, encoding, file) when either cannot be
    used, and then nothing is kept."""
    problems = choice_problems(app, values)
    if not isinstance(file, UploadFile) or not file.filename:
        problems.append(Problem("file", _("Choose the audience file to send to.")))
    if problems:
        raise InvalidInput(problems=problems)
    assert isinstance(file, UploadFile)
    try:
        saved = await save_upload(app, file, limit)
    finally:
        await file.close()
    try:
        size = saved.path.stat().st_size
        staged = await check_upload(app, saved, values, file.filename or saved.path.name, size)
    except BaseException:
        app.runs.discard_upload(saved)
        raise
    staged.save(saved)
    return saved


def choice_problems(app: Smslink, values: dict[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    name = values.get("touchpoint", "")
    if not name:
        problems.append(Problem("touchpoint", _("Choose the touchpoint to send.")))
    elif name not in {t.name for t in app.touchpoints.list()}:
        problems.append(Problem("touchpoint", _("There is no touchpoint %(name)s.", name=name)))
    encoding = values.get("encoding", "").strip()
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            problems.append(
                Problem("encoding", _("%(name)s is not an encoding.", name=repr(encoding)))
            )
    return problems


async def check_upload(
    app: Smslink, staged_upload: Upload, values: dict[str, str], name: str, size: int
) -> Staged:
    """Preview the upload with the chosen touchpoint: InvalidInput with the reader's
    words on the file field when the file cannot be read as it is."""
    problems = choice_problems(app, values)
    if problems:
        raise InvalidInput(problems=problems)
    encoding = values.get("encoding", "").strip()
    try:
        preview = await asyncio.to_thread(
            app.runs.preview, values["touchpoint"], staged_upload.path, encoding=encoding or None
        )
    except InvalidInput as error:
        if error.problems:
            raise
        raise InvalidInput(problems=[Problem("file", error.args[0])]) from error
    return Staged.of(values["touchpoint"], encoding, name, size, preview)


async def start_upload(
    app: Smslink, runner: RunExecutor, staged_upload: Upload, staged: Staged, *, again: bool
) -> int:
    """Store the run of a previewed upload (the audience is read whole once more, in a
    worker thread) and start it in the service; its id."""
    run_id = await asyncio.to_thread(
        app.runs.start,
        RunRequest(
            staged.touchpoint,
            staged_upload.path,
            staged_upload.results_path,
            encoding=staged.encoding or None,
            again=again,
            origin=ORIGIN,
        ),
    )
    staged.run_id = run_id
    staged.save(staged_upload)
    runner.start(run_id)
    return run_id
