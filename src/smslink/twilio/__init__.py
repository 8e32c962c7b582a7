"""Twilio's HTTP API: the client, its errors grouped by what to do about them, and the
request signature for checking status callbacks."""

from smslink.twilio.client import Message, TwilioClient
from smslink.twilio.errors import (
    AnswerLost,
    ApiError,
    ConnectFailed,
    ErrorKind,
    NotTwilio,
    TransportError,
    TwilioError,
    Withheld,
)
from smslink.twilio.signature import compute_signature, is_valid_signature

__all__ = [
    "AnswerLost",
    "ApiError",
    "ConnectFailed",
    "ErrorKind",
    "Message",
    "NotTwilio",
    "TransportError",
    "TwilioClient",
    "TwilioError",
    "Withheld",
    "compute_signature",
    "is_valid_signature",
]
