"""The words the run pages and the runs API show for a run's states, its records' statuses
and stages, and the reasons a record is or is not sent again: in the user's language, each
asked for when a page or an answer is made (a module-level table would freeze English)."""

from __future__ import annotations

from smslink.web.i18n import _

#: Order of the statuses in counts, the chart and the filter.
STATUS_ORDER = ("delivered", "sent", "undelivered", "failed", "error")


def state_labels() -> dict[str, str]:
    return {
        "created": _("Starting"),
        "sending": _("Sending"),
        "interrupted": _("Interrupted"),
        "stopped": _("Stopped"),
        "completed": _("Completed"),
    }


def status_labels() -> dict[str, str]:
    return {
        "delivered": _("Delivered"),
        "sent": _("Sent, no receipt"),
        "undelivered": _("Undelivered"),
        "failed": _("Failed"),
        "error": _("Error"),
        "unfinished": _("Not final yet"),
        "problems": _("All problems"),
    }


def stage_labels() -> dict[str, str]:
    """Where a record that is not final yet is."""
    return {
        "pending": _("waiting to be sent"),
        "posting": _("being sent"),
        "tracking": _("sent, waiting for the receipt"),
        "done": _("final"),
    }


def status_help() -> dict[str, str]:
    return {
        "delivered": _("The handset confirmed receipt."),
        "sent": _("The carrier took it, but no receipt came."),
        "undelivered": _("The carrier could not deliver it."),
        "failed": _("Twilio could not send it."),
        "error": _("Never sent: bad data, or refused by Twilio."),
    }


def again_reasons() -> dict[str, str]:
    """Why records are, or are not, sent again (the rule of `smslink.engine.again`)."""
    return {
        "temporary": _(
            "The delivery failed for a reason that passes (a handset switched off or out of "
            "coverage, a busy carrier, a full queue, an unknown error): another try may work."
        ),
        "touchpoint_fixed": _(
            "Refused before sending because of the message or its mapping; the touchpoint as "
            "it is now makes a message of the record."
        ),
        "content_changed": _(
            "Twilio refused the message text; the touchpoint now makes a different message."
        ),
        "region": _(
            "Twilio refused the destination country; sent again in case an administrator has "
            "enabled it in Twilio's Geo Permissions since."
        ),
        "lasting": _(
            "The carrier said it cannot be delivered for a lasting reason (blocked, unknown "
            "or landline number, carrier filtering): sending again would fail again."
        ),
        "opted_out": _("The recipient replied STOP to this sender."),
        "recipient": _("Twilio refused the recipient (an invalid or unreachable number)."),
        "same_content": _("Twilio refused the message text, and the touchpoint still makes it."),
        "not_fixable": _(
            "Not something the touchpoint can fix: the record itself is malformed, or nobody "
            "can tell whether the message went out (check Twilio's log first)."
        ),
        "still_fails": _(
            "The touchpoint as it is now still cannot make a message of the record; fix the "
            "data or the touchpoint first."
        ),
    }
