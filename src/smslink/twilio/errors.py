"""Twilio failures, grouped by what the caller should do about them.

The grouping follows httpx's split between "the request never left" (safe to retry) and
"the request may have been processed" (retrying could bill and deliver twice): the send API
has no idempotency key, so that distinction is what keeps a message from going out twice.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """What to do about a failed request."""

    RETRYABLE = "retryable"  # never processed (429, connect failure, 5xx on GET): retry later
    AMBIGUOUS = "ambiguous"  # a POST that may have gone out: reconcile, never resend blindly
    RECIPIENT = "recipient"  # this recipient cannot get the message: the record's result
    RECORD = "record"  # this record's data is wrong (e.g. body too long): the record's result
    CONFIGURATION = "configuration"  # the connection is wrong: stop the run, fix, resume


#: Errors that say the connection itself is wrong, so every further record would fail too.
CONFIGURATION_CODES = frozenset({20003, 20404, 21212, 21603, 21606})
#: Errors that are about one recipient: their result, and the run goes on.
RECIPIENT_CODES = frozenset({21211, 21408, 21610, 21612, 21614, 21604})
#: Errors about one record's content.
RECORD_CODES = frozenset({21602, 21617})
#: Answers that say "not processed, try again later".
RETRYABLE_CODES = frozenset({20429, 21611})


class TwilioError(Exception):
    """Base of everything the Twilio layer raises."""

    kind: ErrorKind = ErrorKind.RETRYABLE


class ApiError(TwilioError):
    """Twilio answered with an error body: `{code, message, more_info, status}`."""

    def __init__(
        self,
        *,
        status: int,
        code: int | None,
        message: str,
        more_info: str | None = None,
        method: str = "GET",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code or status}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.more_info = more_info
        self.method = method
        self.retry_after = retry_after
        self.kind = classify(status=status, code=code, method=method)


class TransportError(TwilioError):
    """No usable answer came back from the server."""


class ConnectFailed(TransportError):
    """The request never reached the server (refused, DNS, TLS, connect timeout): safe to retry."""

    kind = ErrorKind.RETRYABLE


class AnswerLost(TransportError):
    """The request was sent but its answer was lost (read timeout, reset after sending).

    For a POST the message may exist at Twilio: the caller must reconcile.
    """

    def __init__(self, message: str, *, method: str) -> None:
        super().__init__(message)
        self.method = method
        self.kind = ErrorKind.AMBIGUOUS if method == "POST" else ErrorKind.RETRYABLE


class Withheld(TwilioError):
    """The caller withdrew its permission before this attempt: the request was not sent."""

    kind = ErrorKind.RETRYABLE


class NotTwilio(TwilioError):
    """An answer that is not Twilio's: an HTML error page from a proxy or load balancer, a
    404 from a server that has no Messages resource, a success status whose body is not
    Twilio's JSON. The base URL points elsewhere or something in front of Twilio is failing:
    a fact about the connection, never a verdict about one record.

    `status` is the HTTP status (None when unknown). What to do depends on it and on the
    method: a 5xx to a GET was not processed (retry); a 5xx to a POST may have been
    forwarded to Twilio and processed (reconcile, never resend blindly); anything else says
    the connection is wrong (stop the run, keep what may have been sent for reconciling).
    """

    def __init__(self, message: str, *, status: int | None = None, method: str = "GET") -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        if status is not None and status >= 500:
            self.kind = ErrorKind.AMBIGUOUS if method == "POST" else ErrorKind.RETRYABLE
        else:
            self.kind = ErrorKind.CONFIGURATION


def classify(*, status: int, code: int | None, method: str) -> ErrorKind:
    """Group an HTTP status and Twilio error code by what the caller should do."""
    if status == 429 or code in RETRYABLE_CODES:
        return ErrorKind.RETRYABLE
    if status >= 500:
        return ErrorKind.AMBIGUOUS if method == "POST" else ErrorKind.RETRYABLE
    if code in CONFIGURATION_CODES or status in (401, 403):
        return ErrorKind.CONFIGURATION
    if code in RECORD_CODES:
        return ErrorKind.RECORD
    if code in RECIPIENT_CODES:
        return ErrorKind.RECIPIENT
    # Everything else Twilio refuses for a single message (21211, 21610, 3000x, unknown codes)
    # is that recipient's result: reporting it per record keeps the rest of the run going.
    return ErrorKind.RECIPIENT
