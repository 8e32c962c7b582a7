"""The JSON shapes of Twilio's Message, Account and list-page resources.

Field names, order and types follow the official spec and real bodies: counts and prices
are strings, error_code is an int, dates are RFC 2822 in GMT with "+0000". Clients parse
these strictly (the SDK treats any extra top-level key of a page as the item list).
"""

from __future__ import annotations

import functools
import time

from smslink.simulator.lifecycle import DELIVERY_ERRORS, Snapshot
from smslink.simulator.state import Account, Message

API_VERSION = "2010-04-01"
ROOT = f"/{API_VERSION}"
PRICE_PER_SEGMENT = 0.0079  # USD, what a US long code message costs
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ACCOUNT_SUBRESOURCES = (
    ("available_phone_numbers", "AvailablePhoneNumbers"),
    ("calls", "Calls"),
    ("conferences", "Conferences"),
    ("incoming_phone_numbers", "IncomingPhoneNumbers"),
    ("notifications", "Notifications"),
    ("outgoing_caller_ids", "OutgoingCallerIds"),
    ("recordings", "Recordings"),
    ("transcriptions", "Transcriptions"),
    ("addresses", "Addresses"),
    ("signing_keys", "SigningKeys"),
    ("connect_apps", "ConnectApps"),
    ("sip", "SIP"),
    ("authorized_connect_apps", "AuthorizedConnectApps"),
    ("usage", "Usage"),
    ("keys", "Keys"),
    ("applications", "Applications"),
    ("short_codes", "SMS/ShortCodes"),
    ("queues", "Queues"),
    ("messages", "Messages"),
    ("balance", "Balance"),
)


def rfc2822(epoch: float) -> str:
    """`Thu, 30 Jul 2015 20:12:31 +0000`, independent of the process locale."""
    return _rfc2822_second(int(epoch))


@functools.lru_cache(maxsize=4096)
def _rfc2822_second(epoch: int) -> str:
    """Cached by the second it names: a list page shows three dates for each of up to
    1,000 messages, mostly from the same few seconds."""
    t = time.gmtime(epoch)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def message_uri(account_sid: str, sid: str) -> str:
    return f"{ROOT}/Accounts/{account_sid}/Messages/{sid}.json"


def message_json(msg: Message, snap: Snapshot) -> dict[str, object]:
    """The Message resource (its 20 fields) as it stands in `snap`."""
    status = snap.status
    accepted = status == "accepted"  # a Messaging Service has not picked a sender yet
    failing = status in ("undelivered", "failed")
    price: str | None = None
    if status in ("delivered", "undelivered"):
        price = f"{-PRICE_PER_SEGMENT * msg.segments:.5f}"
    elif status == "failed":
        price = "0.00000"  # Twilio does not bill messages that were never sent
    code = msg.fate.error_code if failing else None
    base = f"{ROOT}/Accounts/{msg.account_sid}/Messages/{msg.sid}"
    return {
        "account_sid": msg.account_sid,
        "api_version": API_VERSION,
        "body": msg.body,
        "date_created": rfc2822(msg.created),
        "date_sent": None if snap.sent_at is None else rfc2822(snap.sent_at),
        "date_updated": rfc2822(snap.updated_at),
        "direction": "outbound-api",
        "error_code": code,
        "error_message": DELIVERY_ERRORS[code] if code is not None else None,
        "from": None if accepted else msg.sender,
        "messaging_service_sid": msg.service_sid,
        "num_media": str(msg.num_media),
        "num_segments": "0" if accepted else str(msg.segments),
        "price": price,
        "price_unit": None if price is None else "USD",
        "sid": msg.sid,
        "status": status,
        "subresource_uris": {"media": f"{base}/Media.json"},
        "to": msg.to,
        "uri": f"{base}.json",
    }


def account_json(account: Account) -> dict[str, object]:
    """The Account resource, without its auth_token: the simulator never echoes secrets."""
    base = f"{ROOT}/Accounts/{account.sid}"
    return {
        "date_created": rfc2822(account.created),
        "date_updated": rfc2822(account.created),
        "friendly_name": "smslink simulator",
        "owner_account_sid": account.sid,
        "sid": account.sid,
        "status": "active",
        "subresource_uris": {key: f"{base}/{path}.json" for key, path in _ACCOUNT_SUBRESOURCES},
        "type": "Full",
        "uri": f"{base}.json",
    }
