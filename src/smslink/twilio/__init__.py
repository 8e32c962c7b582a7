"""Twilio's HTTP API: the client, and its errors grouped by what to do about them."""

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
]
