"""Sending again to those who did not get a run's message: which records, and why.

A completed run's records are sorted by one rule (`verdict`) into those worth a new run
and those that are not, each with the reason, so a face shows the choice before anything
is sent; `write_again_audience` then writes the chosen records' input rows, exactly as
they were read, as a JSON Lines audience for an ordinary new run (`start_run`), which
applies every check and the repeated-send refusal like any other.

The rule. A record is sent again when it ended

1. `undelivered` or `failed` with a delivery error that says "not now" rather than "never"
   (`RETRY_DELIVERY_CODES`: 30001 queue overflow, 30002 account suspended (fixed at
   Twilio), 30003 handset unreachable (switched off, out of coverage), 30008 unknown error,
   30009 missing segment, 30017 carrier network congestion, 30022 the sender's throughput
   limit), or with no error code at all (nothing says it cannot work);
2. `error` before anything reached Twilio, refused when the record was prepared (an empty
   placeholder, a message too long once filled in, a phone column that held no number)
   and the touchpoint as it is now makes a message of the record: someone fixed the
   touchpoint;
3. `error` because Twilio refused the content (21617 body too long, 21602 empty body) and
   the touchpoint now makes a different message of the record;
4. `error` because Twilio refused the destination country (21408): an administrator may
   have enabled it in Twilio's Geo Permissions since.

And never when it ended `delivered`; `sent` (the carrier took it and sent no receipt: it
may well have arrived); undelivered or failed for a lasting reason (30004 blocked, 30005
unknown number, 30006 landline, 30007 carrier filtering, and any other code); opted out
(21610) or refused as a recipient by Twilio (invalid, unreachable or not a mobile number);
with an outcome nobody could tell (it may have been sent) or any other error that was not
the preparation's doing (a malformed record: the file must change, in a new upload); or
when the touchpoint as it is now still cannot make a message of it (a bad phone number
stays bad: the data must change). Every record sent again is prepared with the touchpoint
as it is now, so the reason a record is left out is what the touchpoint says today.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from smslink.audience.readers import AudienceRecord
from smslink.domain.models import Delivery, ResultStatus, Run, Stage
from smslink.engine.prepare import Recipe, prepare
from smslink.engine.start import recipe_for, touchpoint_of
from smslink.store import Store

#: Delivery errors after which the same message may well arrive another time.
RETRY_DELIVERY_CODES = frozenset({30001, 30002, 30003, 30008, 30009, 30017, 30022})
#: Twilio refused the content of the message: a changed touchpoint may fix it.
CONTENT_CODES = frozenset({21602, 21617})
#: Twilio refused the destination country (Geo Permissions): an administrator can allow it.
REGION_CODE = 21408
#: The recipient replied STOP to the sender.
OPTED_OUT_CODE = 21610
#: The statuses a record may end with and be looked at again at all.
CONSIDERED = (ResultStatus.UNDELIVERED, ResultStatus.FAILED, ResultStatus.ERROR)


class Reason(StrEnum):
    """Why a record is (first group) or is not (second) sent again."""

    # sent again
    TEMPORARY = "temporary"  # rule 1: a delivery error that says "not now"
    TOUCHPOINT_FIXED = "touchpoint_fixed"  # rule 2: the touchpoint now makes a message of it
    CONTENT_CHANGED = "content_changed"  # rule 3: Twilio refused the content; it changed
    REGION = "region"  # rule 4: the country may have been enabled since
    # not sent again
    LASTING = "lasting"  # undelivered/failed for a lasting reason
    OPTED_OUT = "opted_out"  # replied STOP to this sender
    RECIPIENT = "recipient"  # Twilio refused the recipient
    SAME_CONTENT = "same_content"  # Twilio refused the content and it is unchanged
    NOT_FIXABLE = "not_fixable"  # an error the touchpoint cannot fix (data, unknown outcome)
    STILL_FAILS = "still_fails"  # the touchpoint as it is now still cannot make a message

    @property
    def sends(self) -> bool:
        return self in _SENDS


_SENDS = frozenset(
    {Reason.TEMPORARY, Reason.TOUCHPOINT_FIXED, Reason.CONTENT_CHANGED, Reason.REGION}
)


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: Reason
    #: What the touchpoint as it is now says about the record, when it cannot send it.
    detail: str | None = None

    @property
    def sends(self) -> bool:
        return self.reason.sends


@dataclass(frozen=True, slots=True, order=True)
class AgainGroup:
    """Records that ended alike and get the same verdict: status, error code, reason."""

    status: str
    code: int | None
    reason: Reason
    #: Twilio's or smslink's message for the first record of the group (they share a code).
    example: str | None = field(compare=False, default=None)


@dataclass(slots=True)
class AgainPlan:
    """What sending again would do: the records chosen, and every group with its count."""

    run_id: int
    touchpoint: str
    considered: int = 0  # records that ended undelivered, failed or error
    chosen: int = 0
    groups: Counter[AgainGroup] = field(default_factory=Counter)

    def sorted_groups(self) -> list[tuple[AgainGroup, int]]:
        """Those sent again first, then the largest groups first."""
        return sorted(self.groups.items(), key=lambda item: (not item[0].reason.sends, -item[1]))


def verdict(delivery: Delivery, original: Recipe, current: Recipe) -> Verdict:
    """Whether one final record of a run is sent again, and why (the module's rule).

    `original` is how the run prepared its records (its snapshot), `current` how the
    touchpoint prepares them now."""
    status, code = delivery.status, delivery.error_code
    if status in (ResultStatus.UNDELIVERED, ResultStatus.FAILED):
        if code is not None and code not in RETRY_DELIVERY_CODES:
            return Verdict(Reason.LASTING)
        return _if_it_prepares(delivery, current, Reason.TEMPORARY)
    if status is not ResultStatus.ERROR:
        return Verdict(Reason.NOT_FIXABLE)  # delivered, sent: never asked about
    if code == OPTED_OUT_CODE:
        return Verdict(Reason.OPTED_OUT)
    if code == REGION_CODE:
        return _if_it_prepares(delivery, current, Reason.REGION)
    if code in CONTENT_CODES:
        now = _prepared(delivery, current)
        if now.stage is not Stage.PENDING:
            return Verdict(Reason.STILL_FAILS, now.error_message)
        if now.body == delivery.body:
            return Verdict(Reason.SAME_CONTENT)
        return Verdict(Reason.CONTENT_CHANGED)
    if code is not None:
        return Verdict(Reason.RECIPIENT)
    # No code: refused before Twilio, or an outcome nobody could tell. Only a refusal that
    # preparing the record reproduces was the touchpoint's doing; anything else (a malformed
    # record, an unknown outcome, a skipped opt-out) is not for the touchpoint to fix.
    then = _prepared(delivery, original)
    if then.stage is Stage.PENDING or then.error_message != delivery.error_message:
        return Verdict(Reason.NOT_FIXABLE)
    return _if_it_prepares(delivery, current, Reason.TOUCHPOINT_FIXED)


def plan_again(store: Store, run: Run, current: Recipe) -> AgainPlan:
    """Sort every record of `run` that did not get the message by the rule."""
    plan = AgainPlan(run.id, run.touchpoint)
    for delivery, result in _verdicts(store, run, current):
        plan.considered += 1
        plan.chosen += result.sends
        group = AgainGroup(
            str(delivery.status),
            delivery.error_code,
            result.reason,
            result.detail or delivery.error_message,
        )
        _count(plan.groups, group)
    return plan


def write_again_audience(store: Store, run: Run, current: Recipe, path: Path) -> AgainPlan:
    """Write the input rows of the records the rule sends again to `path` (JSON Lines, the
    run's columns in order, values exactly as read), and return the plan it followed."""
    plan = AgainPlan(run.id, run.touchpoint)
    columns = list(run.columns)
    with path.open("x", encoding="utf-8", newline="\n") as file:
        for delivery, result in _verdicts(store, run, current):
            plan.considered += 1
            group = AgainGroup(
                str(delivery.status),
                delivery.error_code,
                result.reason,
                result.detail or delivery.error_message,
            )
            _count(plan.groups, group)
            if result.sends:
                plan.chosen += 1
                ordered = {c: delivery.row.get(c, "") for c in columns}
                ordered.update({k: v for k, v in delivery.row.items() if k not in ordered})
                file.write(json.dumps(ordered, ensure_ascii=False) + "\n")
    return plan


def original_recipe(run: Run) -> Recipe:
    """How `run` prepared its records: its snapshot of the touchpoint."""
    return recipe_for(touchpoint_of(run), run.snapshot.region)


def _verdicts(store: Store, run: Run, current: Recipe) -> Iterator[tuple[Delivery, Verdict]]:
    original = original_recipe(run)
    statuses = [s.value for s in CONSIDERED]
    last: int | None = -1
    while last is not None:
        page = store.deliveries.page(run.id, statuses=statuses, after_seq=last, limit=1000)
        for delivery in page:
            yield delivery, verdict(delivery, original, current)
        last = page[-1].seq if len(page) == 1000 else None


def _count(groups: Counter[AgainGroup], group: AgainGroup) -> None:
    """Count `group` under the first group of its kind, keeping that one's example."""
    groups[group] += 1  # equal groups (example not compared) share one counter


def _prepared(delivery: Delivery, recipe: Recipe) -> Delivery:
    record = AudienceRecord(delivery.seq + 1, 0, dict(delivery.row))
    return prepare(delivery.run_id, delivery.seq, record, recipe)


def _if_it_prepares(delivery: Delivery, current: Recipe, reason: Reason) -> Verdict:
    now = _prepared(delivery, current)
    if now.stage is not Stage.PENDING:
        return Verdict(Reason.STILL_FAILS, now.error_message)
    return Verdict(reason)
