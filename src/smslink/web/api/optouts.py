"""The REST API for opt-outs: search them, remove one with a reason, and see who removed
which, when and why. Marketers and administrators.

Phones and senders are read as people type them ("+1 (212) 555-0101"), like the command
line reads them; answers give phones in E.164.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from smslink.app import NotFound
from smslink.app.optouts import MAX_REASON_CHARS, RemovedOptOut
from smslink.domain.models import OptOut, User
from smslink.web.api.common import Text, api_router, errors, marketer, smslink

router = api_router("opt-outs")

Anyone = Annotated[User, Depends(marketer)]
PhoneQuery = Annotated[str | None, Query(max_length=64, description="A recipient, in any format.")]
SenderQuery = Annotated[
    str | None,
    Query(max_length=64, description="A From number, short code, sender ID or MG... SID."),
]


class OptOutOut(BaseModel):
    """A recipient who replied STOP to a sender: runs skip them."""

    sender: str
    phone: str = Field(description="E.164.")
    created_at: datetime = Field(
        description="First seen: Twilio's first 21610 answer, or the recipient's reply."
    )
    run_id: int | None = Field(description="The run that learned it.")
    source: str = Field(
        description='"twilio": a 21610 answer during a run; "inbound STOP" (or another '
        "opt-out keyword): the recipient's reply, through the incoming-message webhook."
    )
    message: str | None = Field(description="Twilio's message.")

    @classmethod
    def of(cls, o: OptOut) -> OptOutOut:
        return cls(
            sender=o.sender,
            phone=o.phone,
            created_at=o.created_at,
            run_id=o.run_id,
            source=o.source,
            message=o.message,
        )


class OptOutList(BaseModel):
    total: int = Field(description="How many match (the list holds the first `limit`).")
    optouts: list[OptOutOut]


class OptOutRemove(BaseModel):
    """Which opt-out to forget, and why (kept with your name and the time)."""

    model_config = ConfigDict(extra="forbid")

    phone: Text = Field(min_length=1, max_length=64, description="In any format.")
    sender: Text | None = Field(
        None, max_length=64, description="Only this sender's; omitted: every sender's."
    )
    reason: Text = Field(
        min_length=1, max_length=MAX_REASON_CHARS, description="e.g. replied START."
    )


class OptOutRemoved(BaseModel):
    phone: str = Field(description="E.164.")
    sender: str | None = Field(description="null: every sender.")
    removed: int = Field(description="How many opt-outs were removed.")


class RemovalOut(BaseModel):
    """An opt-out someone removed: what it was, and who removed it, when and why."""

    sender: str
    phone: str
    opted_out_at: datetime
    run_id: int | None
    removed_at: datetime
    removed_by: str | None = Field(description="The user; null: the command line.")
    reason: str | None

    @classmethod
    def of(cls, r: RemovedOptOut) -> RemovalOut:
        return cls(
            sender=r.sender,
            phone=r.phone,
            opted_out_at=r.opted_out_at,
            run_id=r.run_id,
            removed_at=r.removed_at,
            removed_by=r.removed_by,
            reason=r.reason,
        )


@router.get("/optouts", summary="Search the opt-outs")
def search_optouts(
    request: Request,
    _: Anyone,
    phone: PhoneQuery = None,
    sender: SenderQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> OptOutList:
    found = smslink(request).optouts.search(phone, sender, limit=limit)
    return OptOutList(total=found.total, optouts=[OptOutOut.of(o) for o in found.optouts])


@router.delete(
    "/optouts",
    summary="Remove an opt-out",
    description="After the recipient opted back in (replied START): runs send to them "
    "again. 404 when no such opt-out is recorded.",
    responses=errors(404),
)
def remove_optout(request: Request, caller: Anyone, body: OptOutRemove) -> OptOutRemoved:
    removal = smslink(request).optouts.remove(
        body.phone, body.sender, reason=body.reason, by=caller.name
    )
    if not removal.removed:
        where = f"from {removal.sender}" if removal.sender else "from any sender"
        raise NotFound(f"no opt-out of {removal.phone} {where} is recorded")
    return OptOutRemoved(phone=removal.phone, sender=removal.sender, removed=removal.removed)


@router.get("/optouts/removals", summary="Removed opt-outs, latest first")
def list_removals(
    request: Request,
    _: Anyone,
    phone: PhoneQuery = None,
    sender: SenderQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[RemovalOut]:
    removals = smslink(request).optouts.removals(phone, sender, limit=limit)
    return [RemovalOut.of(r) for r in removals]
