"""smslink: personalised SMS through Twilio, with per-recipient delivery status."""

__version__ = "0.1.0"
