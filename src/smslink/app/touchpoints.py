"""Touchpoints: the message, its field mapping, and a preview before anything is sent.

The marketer's wizard (Message → Next → Field mapping → Save) and the command line both
come here; the rules are `domain.touchpoint_rules`, the preview uses the very function a
send uses to prepare each record, so what a preview promises is what a send does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from smslink.domain.errors import InvalidInput, Problem
from smslink.domain.models import Touchpoint
from smslink.domain.template import TemplateError, parse_template
from smslink.domain.touchpoint_rules import checked_touchpoint
from smslink.engine import PreviewTotals, Recipe, prepared, recipe_for, tally
from smslink.store import Store


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
