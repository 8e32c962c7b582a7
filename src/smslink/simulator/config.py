"""How a simulated Twilio account behaves: credentials, owned senders, timing, outcomes.

One frozen value per running simulator, so every request sees the same rules and a
message's status can be derived from its age alone (nothing ticks in the background).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Twilio's magic test sender: always succeeds, whatever `owned_numbers` says.
MAGIC_FROM_OK = "+15005550006"
DEFAULT_AUTH_TOKEN = "simulator-token"


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Settings of a simulated account. Shares are fractions of recipients in [0, 1]."""

    #: Any well-formed AccountSid (AC + 32 hex) authenticates with this token; so does any
    #: API key (SK + 32 hex) with this token as its secret.
    auth_token: str = DEFAULT_AUTH_TOKEN
    #: Senders the account owns. MAGIC_FROM_OK always works; other senders get 21606.
    owned_numbers: frozenset[str] = frozenset({MAGIC_FROM_OK})
    queued_s: float = 0.2  # seconds a message stays queued (accepted for the first half with MG)
    sending_s: float = 0.2  # seconds in sending
    sent_s: float = 0.5  # seconds in sent before its final status
    undelivered_share: float = 0.0  # end undelivered with an error_code 30003-30008
    failed_share: float = 0.0  # end failed (straight after sending, never 'sent')
    stuck_share: float = 0.0  # stay 'sent' forever, like carriers that send no receipts
    #: Outcomes come from a hash of (seed, To): the same recipient always gets the same
    #: outcome, however requests are ordered or retried.
    seed: int = 0
    latency_ms: float = 0.0  # fixed delay before every Twilio API response (benchmarks use 50)

    def __post_init__(self) -> None:
        # Accept any iterable (a list from the CLI) while keeping the value hashable.
        object.__setattr__(self, "owned_numbers", frozenset(self.owned_numbers))
        shares = (self.undelivered_share, self.failed_share, self.stuck_share)
        if any(s < 0 for s in shares) or sum(shares) > 1:
            raise ValueError("outcome shares must be >= 0 and sum to at most 1")
        if min(self.queued_s, self.sending_s, self.sent_s, self.latency_ms) < 0:
            raise ValueError("durations must be >= 0")

    def owns(self, sender: str) -> bool:
        """True when the account may send from `sender`."""
        return sender == MAGIC_FROM_OK or sender in self.owned_numbers

    @property
    def service_sender(self) -> str:
        """The number a Messaging Service assigns: the account's first owned number."""
        return min(self.owned_numbers) if self.owned_numbers else MAGIC_FROM_OK
