"""Touchpoints: the message, its field mapping, and a preview before anything is sent.

The marketer's wizard (Message → Next → Field mapping → Save) and the command line both
come here; the rules are `domain.touchpoint_rules`, the preview uses the very function a
send uses to prepare each record, so what a preview promises is what a send does.

The wizard's live counts come from here too (`Touchpoints.inspect`): placeholders by the
template grammar, encoding and segments by `domain.segments`, the counting a send bills
by, so a page never re-implements either. A sample audience uploaded to fill the mapping
choices is read by the audience readers a send uses (`Touchpoints.sample_columns`) and
never kept.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from smslink.audience.readers import (
    CSV_SUFFIXES,
    JSONL_SUFFIXES,
    AudienceError,
    open_audience,
)
from smslink.domain.errors import InvalidInput, Problem, say
from smslink.domain.models import MAX_BODY_CHARS, MAX_PLACEHOLDERS, Touchpoint
from smslink.domain.segments import (
    GSM7_EXTENSION,
    GSM7_PER_SEGMENT,
    GSM7_SINGLE,
    UCS2_PER_SEGMENT,
    UCS2_SINGLE,
    count_segments,
    is_gsm7,
)
from smslink.domain.template import Template, TemplateError, parse_template
from smslink.domain.touchpoint_rules import checked_touchpoint, touchpoint_problems
from smslink.engine import PreviewTotals, Recipe, prepared, recipe_for, tally
from smslink.store import NotFound, Store

#: The longest text `inspect` looks at: far beyond what any message may be (1,600
#: characters), small enough that counting it costs nothing.
MAX_INSPECT_CHARS = 20_000
#: The largest sample audience read for its columns. The columns are in the first line
#: (CSV) or the first records (JSON Lines); a face may send just the start of a bigger file.
MAX_SAMPLE_BYTES = 1024 * 1024
#: Records of a sample read for JSON Lines keys and example values.
SAMPLE_RECORDS = 50

#: Typographic characters that force UCS-2 and the GSM-7 text that looks the same: what
#: word processors put in a message without asking (curly quotes above all).
GSM7_LOOKALIKES: Mapping[str, str] = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark: the apostrophe word processors type
    "\u201a": ",",
    "\u201b": "'",
    "\u2032": "'",  # prime
    "\u00b4": "'",  # acute accent
    "`": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2212": "-",  # minus sign
    "\u2010": "-",
    "\u2011": "-",
    "\u2026": "...",
    "\u00a0": " ",  # no-break space
    "\u2007": " ",
    "\u202f": " ",
    "\u2009": " ",
    "\u200b": "",  # zero-width space: invisible, yet it doubles the cost
    "\ufeff": "",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TouchpointChanges:
    """What to change; None leaves it. A new `mapping` replaces the whole mapping; a new
    `message` without one keeps the mappings its placeholders still use."""

    connection: str | None = None
    message: str | None = None
    phone_column: str | None = None
    mapping: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class TouchpointUpdate:
    touchpoint: Touchpoint
    #: Placeholders whose mapping was dropped because the new message no longer has them.
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """One record as a send would make it."""

    record: int  # the record's number in the audience, from 1
    to: str
    body: str
    encoding: str  # GSM-7 or UCS-2
    segments: int


@dataclass(slots=True)
class Preview:
    rows: list[PreviewRow] = field(default_factory=list)  # the first `limit` sendable ones
    totals: PreviewTotals = field(default_factory=PreviewTotals)


@dataclass(frozen=True, slots=True)
class ForcingCharacter:
    """A character that makes the whole message UCS-2, and what looks the same in GSM-7."""

    char: str
    code: str  # "U+2019"
    name: str  # Unicode's name for it ("" when it has none)
    count: int  # how often the message has it
    replacement: str | None = None  # GSM-7 text that looks the same, when there is one


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A message as typed, counted the way a send bills it (see `Touchpoints.inspect`).

    The counts are for the text as typed: each ``<Placeholder>`` is counted as its own
    name, since every recipient's value differs; a value with a character outside GSM-7
    makes that recipient's message UCS-2.
    """

    message: str
    placeholders: tuple[str, ...]  # distinct, in order of first use (also beyond the limit)
    characters: int  # code points as typed
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2), what segments are made of
    encoding: str  # GSM-7 or UCS-2
    segments: int
    single_segment: int  # units that fit in one segment (160 or 70)
    per_segment: int  # units per segment of a longer message (153 or 67)
    forcing: tuple[ForcingCharacter, ...]  # the characters that make it UCS-2
    doubled: tuple[str, ...]  # GSM-7 extension characters present: two septets each
    problems: tuple[Problem, ...]  # why it could not be saved as it is (field "message")
    max_placeholders: int = MAX_PLACEHOLDERS

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def capacity(self) -> int:
        """Units that fit in the segments the message takes now."""
        if self.segments <= 1:
            return self.single_segment
        return self.segments * self.per_segment

    def parts(self) -> list[tuple[str, bool]]:
        """The message in runs of text, each saying whether its characters force UCS-2
        (what a page highlights)."""
        forcing = {f.char for f in self.forcing}
        runs: list[tuple[str, bool]] = []
        for char in self.message:
            marked = char in forcing
            if runs and runs[-1][1] == marked:
                runs[-1] = (runs[-1][0] + char, marked)
            else:
                runs.append((char, marked))
        return runs


@dataclass(frozen=True, slots=True)
class SampleColumns:
    """What a sample audience says about the columns a field mapping can use."""

    name: str  # the file's name as shown
    columns: tuple[str, ...]  # the CSV header, or the JSON Lines keys of the records read
    examples: dict[str, str]  # column -> its first non-empty value in the records read
    records: int  # records read (at most SAMPLE_RECORDS)
    format: str  # "csv" or "jsonl"
    delimiter: str | None  # None for JSON Lines
    encoding: str  # the codec the text was read with
    #: A problem met in the records after the columns were known; a send would meet it too.
    warning: str | None = None
    #: The column that looks like the phone number, and placeholder -> the column whose
    #: name matches it (FirstName ~ first_name), for a face to fill in what is still empty.
    suggested_phone: str | None = None
    suggested: dict[str, str] = field(default_factory=dict)


class Touchpoints:
    """The touchpoints of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, touchpoint: Touchpoint) -> Touchpoint:
        """Check and store a new touchpoint; InvalidInput names every problem by field."""
        touchpoint = checked_touchpoint(touchpoint)
        self._store.catalogue.add_touchpoint(touchpoint)
        return touchpoint

    def update(self, name: str, changes: TouchpointChanges) -> TouchpointUpdate:
        """Change a touchpoint; runs already started keep the message they started with."""
        touchpoint = self._store.catalogue.get_touchpoint(name)
        dropped: tuple[str, ...] = ()
        if changes.connection is not None:
            touchpoint.connection = changes.connection
        if changes.phone_column is not None:
            touchpoint.phone_column = changes.phone_column.strip()
        if changes.message is not None:
            touchpoint.message = changes.message
        if changes.mapping is not None:
            touchpoint.mapping = dict(changes.mapping)
        elif changes.message is not None:
            kept = _placeholders(touchpoint.message)
            dropped = tuple(p for p in touchpoint.mapping if p not in kept)
            touchpoint.mapping = {p: c for p, c in touchpoint.mapping.items() if p in kept}
        self._store.catalogue.update_touchpoint(checked_touchpoint(touchpoint))
        return TouchpointUpdate(touchpoint, dropped)

    def copy(self, name: str, new_name: str) -> Touchpoint:
        """A new touchpoint `new_name` with the message, connection and mapping of `name`."""
        source = self._store.catalogue.get_touchpoint(name)
        return self.add(replace(source, name=new_name, mapping=dict(source.mapping)))

    def problems(self, touchpoint: Touchpoint, *, new: bool) -> list[Problem]:
        """Every problem storing `touchpoint` would meet, by field, in the order of the
        wizard (`name`, `connection`, `message`, `phone_column`, `mapping.<Placeholder>`):
        the rules, a connection that does not exist, and (for a `new` one) a name another
        touchpoint has. Empty when `add` (or an update to it) would store it."""
        problems = touchpoint_problems(touchpoint)
        if not touchpoint.connection.strip():
            problems.append(Problem("connection", say("choose the connection that sends it")))
        else:
            try:
                self._store.catalogue.get_connection(touchpoint.connection)
            except NotFound:
                problems.append(
                    Problem(
                        "connection",
                        say("no connection named %(name)s", name=repr(touchpoint.connection)),
                    )
                )
        if new and not any(p.field == "name" for p in problems):
            try:
                self._store.catalogue.get_touchpoint(touchpoint.name)
            except NotFound:
                pass
            else:
                problems.append(
                    Problem(
                        "name",
                        say(
                            "a touchpoint named %(name)s already exists: choose another name",
                            name=repr(touchpoint.name),
                        ),
                    )
                )
        return sorted(problems, key=_wizard_order)

    @staticmethod
    def inspect(message: str) -> MessageInfo:
        """Placeholders, characters, encoding and segments of `message` as typed, the
        characters that force UCS-2, and the problems that keep it from being saved.

        The grammar is `parse_template`'s and the counting `count_segments`', the very
        functions a send uses. InvalidInput only for a text far beyond any message
        (`MAX_INSPECT_CHARS`); a message that cannot be saved comes back with `problems`.
        """
        if len(message) > MAX_INSPECT_CHARS:
            raise InvalidInput(
                problems=[
                    Problem(
                        "message",
                        say(
                            "the message is %(length)s characters long; a message may have at "
                            "most %(limit)s: shorten it",
                            length=len(message),
                            limit=MAX_BODY_CHARS,
                        ),
                    )
                ]
            )
        problems: tuple[Problem, ...] = ()
        try:
            parse_template(message)
        except TemplateError as error:
            problems = error.problems or (Problem("message", str(error)),)
        counted = count_segments(message)
        forcing = []
        for char in dict.fromkeys(message):
            if not is_gsm7(char):
                forcing.append(
                    ForcingCharacter(
                        char=char,
                        code=f"U+{ord(char):04X}",
                        name=unicodedata.name(char, ""),
                        count=message.count(char),
                        replacement=GSM7_LOOKALIKES.get(char),
                    )
                )
        gsm = counted.encoding == "GSM-7"
        return MessageInfo(
            message=message,
            placeholders=placeholders_in(message),
            characters=len(message),
            units=counted.units,
            encoding=counted.encoding,
            segments=counted.segments,
            single_segment=GSM7_SINGLE if gsm else UCS2_SINGLE,
            per_segment=GSM7_PER_SEGMENT if gsm else UCS2_PER_SEGMENT,
            forcing=tuple(forcing),
            doubled=tuple(c for c in dict.fromkeys(message) if c in GSM7_EXTENSION),
            problems=problems,
        )

    @staticmethod
    def sample_columns(
        data: bytes,
        filename: str,
        *,
        encoding: str | None = None,
        partial: bool = False,
        placeholders: Iterable[str] = (),
    ) -> SampleColumns:
        """The columns of a sample audience (CSV or JSON Lines, any delimiter and encoding
        a send reads), with an example value each and the columns that look like the phone
        number and each of `placeholders`.

        `data` is the file's content (at most `MAX_SAMPLE_BYTES`), or its start when
        `partial` (then a record cut off at the end is no problem). It is read by the
        readers a send uses from a private temporary file that is deleted before this
        returns: nothing of it is kept. InvalidInput (field `file`) when no columns can be
        read; a problem in a later record is the `warning`.
        """
        if len(data) > MAX_SAMPLE_BYTES:
            raise InvalidInput(
                problems=[
                    Problem(
                        "file",
                        say(
                            "the sample is %(size)s bytes; at most %(limit)s are read: the "
                            "first rows of the audience are enough",
                            size=len(data),
                            limit=MAX_SAMPLE_BYTES,
                        ),
                    )
                ]
            )
        name = _sample_name(filename)
        with tempfile.TemporaryDirectory(prefix="smslink-sample-") as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            sample = _read_sample(path, encoding, partial=partial)
        phone = _phone_column(sample.columns)
        return replace(
            sample,
            suggested_phone=phone,
            suggested=_matching_columns(placeholders, sample.columns, phone),
        )

    def remove(self, name: str) -> None:
        self._store.catalogue.remove_touchpoint(name)

    def list(self) -> list[Touchpoint]:
        return self._store.catalogue.list_touchpoints()

    def show(self, name: str) -> Touchpoint:
        return self._store.catalogue.get_touchpoint(name)

    def preview(
        self, name: str, audience: Path, *, encoding: str | None = None, limit: int = 5
    ) -> Preview:
        """The first `limit` messages as they would go out, and totals over the whole
        audience (messages, segments, records that would fail and why). Sends nothing."""
        recipe = self.recipe(name)
        preview = Preview()
        for record, delivery in prepared(recipe, audience, encoding):
            encoding_used = tally(preview.totals, record, delivery)
            if encoding_used and len(preview.rows) < limit:
                preview.rows.append(
                    PreviewRow(
                        record.number,
                        delivery.to or "",
                        delivery.body or "",
                        encoding_used,
                        delivery.segments,
                    )
                )
        return preview

    def recipe(self, name: str) -> Recipe:
        """What sending touchpoint `name` does to each record, with its connection's region."""
        touchpoint = self._store.catalogue.get_touchpoint(name)
        region = self._store.catalogue.get_connection(touchpoint.connection).region
        return recipe_for(touchpoint, region)


def _placeholders(message: str) -> tuple[str, ...]:
    try:
        return parse_template(message).placeholders
    except TemplateError as error:
        raise InvalidInput(problems=error.problems or [Problem("message", str(error))]) from None


def placeholders_in(message: str) -> tuple[str, ...]:
    """Every distinct placeholder of `message` in order of first use, by the template
    grammar itself (rendering with a mapping that notes what it is asked for), also when
    there are more than the limit."""
    asked = _Asked()
    Template(message, ()).render(asked)
    return tuple(asked)


class _Asked(dict[str, str]):
    """A mapping that answers every placeholder with "x" and remembers the names asked."""

    def get(self, key: str, default: object = None) -> str:
        self.setdefault(key, "x")
        return "x"


_ORDER = ("name", "connection", "message", "phone_column", "mapping")


def _wizard_order(problem: Problem) -> int:
    head = problem.field.split(".", 1)[0]
    return _ORDER.index(head) if head in _ORDER else len(_ORDER)


def _sample_name(filename: str) -> str:
    """The uploaded file's own name without any folder or control character, or
    "sample" with its extension when that leaves nothing usable."""
    base = re.split(r"[\\/]", filename)[-1]
    base = "".join(c for c in base if unicodedata.category(c) not in ("Cc", "Cf")).strip()
    suffix = Path(base).suffix.lower() if base not in ("", ".", "..") else ""
    if not base or base in (".", "..") or base.startswith(".") or len(base) > 100:
        base = "sample" + (suffix if len(suffix) <= 10 else "")
    return base


def _read_sample(path: Path, encoding: str | None, *, partial: bool) -> SampleColumns:
    suffix = path.suffix.lower()
    kind = "jsonl" if suffix in JSONL_SUFFIXES else "csv" if suffix in CSV_SUFFIXES else ""
    examples: dict[str, str] = {}
    warning: str | None = None
    records = 0
    try:
        with open_audience(path, encoding) as reader:
            try:
                for record in reader:
                    records += 1
                    if record.problem and warning is None and not partial:
                        warning = record.problem
                    for column, value in record.values.items():
                        if column not in examples and value.strip():
                            examples[column] = _example(value)
                    if records >= SAMPLE_RECORDS:
                        break
            except AudienceError as error:
                if not reader.columns:
                    raise
                if not partial:
                    warning = str(error)
            columns = tuple(reader.columns)
            delimiter, used = reader.delimiter, reader.encoding or "utf-8"
    except AudienceError as error:
        raise InvalidInput(
            problems=[Problem("file", error.args[0], error.remedy)], remedy=error.remedy
        ) from None
    if not columns:
        raise InvalidInput(
            problems=[
                Problem(
                    "file",
                    say(
                        "%(file)s has no columns: write one JSON object per line, e.g. %(example)s",
                        file=path.name,
                        example='{"Phone": "+14155550123", "FirstName": "Ada"}',
                    ),
                )
            ]
        )
    return SampleColumns(
        name=path.name,
        columns=columns,
        examples={c: examples[c] for c in columns if c in examples},
        records=records,
        format=kind,
        delimiter=delimiter,
        encoding="utf-8" if used == "utf-8-sig" else used,
        warning=warning,
    )


def _example(value: str, limit: int = 40) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _key(name: str) -> str:
    """A column or placeholder name as compared for suggestions: letters and digits only,
    case folded (FirstName, first_name and "First Name" are the same)."""
    plain = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in plain if c.isalnum() and not unicodedata.combining(c))


#: Column names (as `_key` writes them) that hold a phone number, best first.
_PHONE_NAMES = (
    "phone",
    "phonenumber",
    "mobile",
    "mobilephone",
    "mobilenumber",
    "cell",
    "cellphone",
    "msisdn",
    "to",
    "telephone",
    "tel",
    "handy",
    "mobil",
    "telefon",
    "telefonnummer",
    "mobilnummer",
    "handynummer",
)
_PHONE_WORDS = ("phone", "mobile", "mobil", "cell", "msisdn", "handy", "telefon", "telephon")


def _phone_column(columns: tuple[str, ...]) -> str | None:
    keys = {_key(c): c for c in reversed(columns)}
    for wanted in _PHONE_NAMES:
        if wanted in keys:
            return keys[wanted]
    for column in columns:
        if any(word in _key(column) for word in _PHONE_WORDS):
            return column
    return None


def _matching_columns(
    placeholders: Iterable[str], columns: tuple[str, ...], phone: str | None
) -> dict[str, str]:
    keys = {_key(c): c for c in reversed(columns)}
    matches: dict[str, str] = {}
    for placeholder in placeholders:
        column = keys.get(_key(placeholder))
        if column is not None and column != phone:
            matches[placeholder] = column
    return matches
