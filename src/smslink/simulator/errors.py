"""Twilio's REST errors as the simulator raises them, with Twilio's wording.

Clients classify errors by `code` and HTTP `status`, and people read `message`, so all
three follow real Twilio responses (examples/error_examples.json).
"""

from __future__ import annotations

from aiohttp import web


class TwilioError(Exception):
    """An error answered as Twilio's JSON error body with its HTTP status."""

    def __init__(self, code: int, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def body(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status)


def authenticate() -> TwilioError:
    return TwilioError(20003, 401, "Authenticate")


def not_found(path: str) -> TwilioError:
    return TwilioError(20404, 404, f"The requested resource {path} was not found")


def method_not_allowed(method: str) -> TwilioError:
    return TwilioError(20004, 405, f"Method not allowed: {method}")


def bad_request(message: str) -> TwilioError:
    return TwilioError(20001, 400, message)


def page_size_too_large() -> TwilioError:
    return TwilioError(20007, 400, "Page size too large. The maximum page size is 1000.")


def to_required() -> TwilioError:
    return TwilioError(21604, 400, "A 'To' phone number is required.")


def from_required() -> TwilioError:
    return TwilioError(21603, 400, "A 'From' phone number is required.")


def body_required() -> TwilioError:
    return TwilioError(21602, 400, "Message body is required.")


def body_too_long() -> TwilioError:
    return TwilioError(
        21617, 400, "The concatenated message body exceeds the 1600 character limit."
    )


def invalid_to(to: str) -> TwilioError:
    return TwilioError(21211, 400, f"The 'To' number {to} is not a valid phone number.")


def invalid_from(sender: str) -> TwilioError:
    return TwilioError(
        21212,
        400,
        f"The 'From' number {sender} is not a valid phone number, shortcode, "
        "or alphanumeric sender ID.",
    )


def from_not_owned(sender: str) -> TwilioError:
    return TwilioError(
        21606,
        400,
        f"The From phone number {sender} is not a valid, SMS-capable inbound phone number "
        "or short code for your account.",
    )


def sender_queue_full() -> TwilioError:
    return TwilioError(
        21611, 400, "This 'From' number has exceeded the maximum number of queued messages."
    )


def invalid_service(sid: str) -> TwilioError:
    return TwilioError(21701, 400, f"The Messaging Service Sid {sid} is invalid.")


def not_reachable(to: str, sender: str) -> TwilioError:
    return TwilioError(
        21612,
        400,
        f"The 'To' phone number: {to}, is not currently reachable using the 'From' "
        f"phone number: {sender} via SMS.",
    )


def region_not_enabled(to: str) -> TwilioError:
    return TwilioError(
        21408,
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the "
        f"'To' number: {to}",
    )


def unsubscribed() -> TwilioError:
    return TwilioError(21610, 400, "Attempt to send to unsubscribed recipient")


def not_mobile(to: str) -> TwilioError:
    return TwilioError(21614, 400, f"To number: {to}, is not a mobile number")
