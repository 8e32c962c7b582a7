"""Turning one audience record into a message: phone, body, segments, or a clear reason why not.

Shared by a send (which stores the result), a dry run and a preview (which only show it),
so what a preview promises is exactly what a send does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from smslink.audience.readers import AudienceRecord
from smslink.domain.models import MAX_BODY_CHARS, Delivery, ResultStatus, Stage, Touchpoint
from smslink.domain.phone import PhoneError, normalize_phone
from smslink.domain.segments import count_segments
from smslink.domain.template import MissingValue, Template, check_mapping, parse_template


@dataclass(frozen=True, slots=True)
class Recipe:
    """Everything needed to prepare a record, fixed for the length of a run."""

    template: Template
    phone_column: str
    mapping: dict[str, str] = field(default_factory=dict)  # placeholder -> column
    region: str = "US"

    @classmethod
    def from_touchpoint(cls, touchpoint: Touchpoint, region: str) -> Recipe:
        """Build and check a recipe; raises TemplateError naming what to fix."""
        template = parse_template(touchpoint.message)
        check_mapping(template, touchpoint.phone_column, touchpoint.mapping)
        return cls(template, touchpoint.phone_column, dict(touchpoint.mapping), region)

    @property
    def columns(self) -> list[str]:
        """The audience columns this recipe reads, phone first."""
        seen = [self.phone_column]
        seen += [c for c in self.mapping.values() if c not in seen]
        return seen

    def missing_columns(self, header: list[str]) -> list[str]:
        return [c for c in self.columns if c not in header]


def prepare(run_id: int, seq: int, record: AudienceRecord, recipe: Recipe) -> Delivery:
    """A stored-ready delivery: PENDING when it can be sent, DONE with `error` when not."""
    delivery = Delivery(run_id=run_id, seq=seq, row=record.values)
    if record.problem:
        return _rejected(delivery, record.problem)
    raw_phone = record.values.get(recipe.phone_column, "")
    try:
        delivery.to = normalize_phone(raw_phone, recipe.region)
    except PhoneError as error:
        return _rejected(delivery, f"column '{recipe.phone_column}': {error}")
    values = {name: record.values.get(column, "") for name, column in recipe.mapping.items()}
    try:
        body = recipe.template.render(values)
    except MissingValue as error:
        column = recipe.mapping.get(error.name, error.name)
        return _rejected(
            delivery,
            f"column '{column}' is empty, but the message needs it for <{error.name}>: "
            "fill it in or remove the record",
        )
    delivery.body = body
    info = count_segments(body)
    delivery.segments = info.segments
    if len(body) > MAX_BODY_CHARS:
        columns = ", ".join(f"'{c}'" for c in recipe.mapping.values())
        fix = f"shorten the message or the values in {columns}" if columns else "shorten it"
        return _rejected(
            delivery,
            f"the message is {len(body)} characters once filled in; Twilio's limit is "
            f"{MAX_BODY_CHARS}: {fix}",
        )
    return delivery


def _rejected(delivery: Delivery, reason: str) -> Delivery:
    delivery.stage = Stage.DONE
    delivery.status = ResultStatus.ERROR
    delivery.error_message = reason
    delivery.updated_at = datetime.now(UTC)
    return delivery
