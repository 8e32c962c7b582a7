"""The opt-outs pages (marketers and administrators).

`/optouts` searches the recipients who replied STOP, by phone (in any format, read like the
command line reads it) and by sender, and shows the latest removals: who removed which
opt-out, when and why. Each opt-out says where it came from: Twilio's 21610 during a run,
or the recipient's own reply (STOP) through the incoming-message webhook. `/optouts/remove`
asks for the reason before an opt-out goes; the removal is kept in the store with the
user's name.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smslink.app.optouts import MAX_REASON_CHARS, OptOutSearch
from smslink.domain.errors import InvalidInput
from smslink.domain.keywords import inbound_keyword
from smslink.domain.models import User
from smslink.web.i18n import _
from smslink.web.pages.common import field_errors, form, redirect, signed_in, smslink, text
from smslink.web.templating import render

router = APIRouter(include_in_schema=False)

#: Opt-outs shown on one page; the count says how many more match.
SHOWN = 200
#: Removals shown under the search.
RECENT_REMOVALS = 20


@router.get("/optouts")
def list_page(request: Request, phone: str = "", sender: str = "") -> Response:
    user = signed_in(request)
    app = smslink(request).optouts
    errors: dict[str, str] = {}
    found: OptOutSearch | None = None
    try:
        found = app.search(phone, sender, limit=SHOWN)
    except InvalidInput as error:
        errors, _general = field_errors(error)
    removals = (
        app.removals(found.phone, found.sender, limit=RECENT_REMOVALS)
        if found is not None
        else app.removals(limit=RECENT_REMOVALS)
    )
    return render(
        request,
        "optouts/list.html",
        user,
        status_code=422 if errors else 200,
        phone=phone,
        sender=sender,
        senders=app.senders(),
        found=found,
        errors=errors,
        removals=removals,
        searched=bool(phone.strip() or sender.strip()),
        removed=request.query_params.get("removed", ""),
        replied=inbound_keyword,
    )


@router.get("/optouts/remove")
def remove_page(request: Request, phone: str = "", sender: str = "") -> Response:
    user = signed_in(request)
    return _remove_form(request, user, phone, sender, "", {})


@router.post("/optouts/remove")
async def remove(request: Request) -> Response:
    user = signed_in(request)
    posted = await form(request)
    phone, sender, reason = text(posted, "phone"), text(posted, "sender"), text(posted, "reason")
    if not sender.strip():  # a page removes one opt-out: one recipient, one sender
        return _remove_form(request, user, phone, sender, reason, {}, status_code=404)
    try:
        removal = smslink(request).optouts.remove(phone, sender, reason=reason, by=user.name)
    except InvalidInput as error:
        errors, general = field_errors(error)
        errors.update((f"_{i}", message) for i, message in enumerate(general))
        return _remove_form(request, user, phone, sender, reason, errors, status_code=422)
    if not removal.removed:
        return _remove_form(request, user, phone, sender, reason, {}, status_code=404)
    return redirect(f"/optouts?removed={removal.removed}")


def _remove_form(
    request: Request,
    user: User,
    phone: str,
    sender: str,
    reason: str,
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    """The removal form for the opt-out of `phone` from `sender`, or a page that says
    there is no such opt-out (any more)."""
    optout: Any = None
    if phone.strip() and sender.strip():
        try:
            found = smslink(request).optouts.search(phone, sender, limit=1)
        except InvalidInput:
            found = None
        optout = found.optouts[0] if found is not None and found.optouts else None
    if optout is None:
        return render(
            request,
            "message.html",
            user,
            status_code=404,
            title=_("No such opt-out"),
            message=_(
                "No opt-out of %(phone)s from %(sender)s is recorded: it may have been "
                "removed already. The opt-outs page shows who removed it.",
                phone=phone or "?",
                sender=sender or "?",
            ),
        )
    return render(
        request,
        "optouts/remove.html",
        user,
        status_code=status_code,
        optout=optout,
        reason=reason,
        errors=errors,
        max_reason=MAX_REASON_CHARS,
        replied=inbound_keyword,
    )
