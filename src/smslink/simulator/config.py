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
    # Limits and faults (faults.py). Fault draws are reproducible from `seed` and never
    # change a recipient's outcome; shares are fractions of Twilio API requests.
    #: Extra delay per answer: exponential with this mean (capped at 10x), added to latency_ms.
    latency_jitter_ms: float = 0.0
    #: Twilio requests in progress (latency included) above this get 429/20429 at once.
    concurrency_limit: int | None = None
    #: Retry-After header (seconds) on 429 answers; None leaves it out, as Twilio often does.
    retry_after_s: float | None = None
    #: Answer 500/20500 or 503/20503 without doing the work (a POST creates nothing).
    server_error_share: float = 0.0
    #: Drop the connection (TCP reset, no HTTP answer) before doing the work.
    reset_before_share: float = 0.0
    #: Of successful creates: drop the connection once the message is stored and counted.
    reset_after_share: float = 0.0
    #: Of successful creates: hold the 201 for delay_after_create_s more (client times out).
    delay_after_create_share: float = 0.0
    delay_after_create_s: float = 60.0
    #: Per-sender throughput in segments per second (US long code 1, toll-free 3, short code
    #: 100); None = unlimited. Above it messages wait in the sender's queue, 'queued' longer.
    sender_mps: float | None = None
    #: Seconds of backlog a sender's queue holds (Twilio: 10 hours); a message that would
    #: push it past this is refused with 21611. Only matters when sender_mps is set.
    sender_queue_s: float = 36000.0
    #: Deliver each message's status callbacks with a random extra delay, so they can arrive
    #: out of order (receivers must never move a status backwards).
    callback_disorder: bool = False
    #: Extra attempts for a status callback that fails (connection error or non-2xx);
    #: Twilio itself does not retry by default, hence 0. A StatusCallback URL's own `#rc=N`
    #: (Twilio's connection override, at most 5) takes precedence for its messages.
    callback_retries: int = 0
    #: Share of status callbacks never delivered (lost on the way, every retry included), so
    #: a receiver's fallback to polling can be tested and measured.
    callback_drop_share: float = 0.0

    def __post_init__(self) -> None:
        # Accept any iterable (a list from the CLI) while keeping the value hashable.
        object.__setattr__(self, "owned_numbers", frozenset(self.owned_numbers))
        shares = (self.undelivered_share, self.failed_share, self.stuck_share)
        if any(s < 0 for s in shares) or sum(shares) > 1:
            raise ValueError("outcome shares must be >= 0 and sum to at most 1")
        if min(self.queued_s, self.sending_s, self.sent_s, self.latency_ms) < 0:
            raise ValueError("durations must be >= 0")
        self._check_faults()
        if self.sender_mps is not None and self.sender_mps <= 0:
            raise ValueError("sender_mps must be > 0 (or None for unlimited)")
        if self.sender_queue_s < 0 or self.callback_retries < 0:
            raise ValueError("sender_queue_s and callback_retries must be >= 0")
        if not 0 <= self.callback_drop_share <= 1:
            raise ValueError("callback_drop_share must be between 0 and 1")

    def _check_faults(self) -> None:
        """Reject fault settings that cannot mean anything, at startup rather than mid-run."""
        fault_shares = (
            self.server_error_share,
            self.reset_before_share,
            self.reset_after_share,
            self.delay_after_create_share,
        )
        if any(not 0 <= s <= 1 for s in fault_shares):
            raise ValueError("fault shares must be between 0 and 1")
        # One draw picks the fault before the work, one the fault after a create.
        if self.server_error_share + self.reset_before_share > 1:
            raise ValueError("server_error_share + reset_before_share must be at most 1")
        if self.reset_after_share + self.delay_after_create_share > 1:
            raise ValueError("reset_after_share + delay_after_create_share must be at most 1")
        if self.concurrency_limit is not None and self.concurrency_limit < 1:
            raise ValueError("concurrency_limit must be >= 1 (or None for unlimited)")
        if self.retry_after_s is not None and self.retry_after_s < 0:
            raise ValueError("retry_after_s must be >= 0 (or None to leave the header out)")
        if min(self.latency_jitter_ms, self.delay_after_create_s) < 0:
            raise ValueError("latency_jitter_ms and delay_after_create_s must be >= 0")

    def owns(self, sender: str) -> bool:
        """True when the account may send from `sender`."""
        return sender == MAGIC_FROM_OK or sender in self.owned_numbers

    @property
    def service_sender(self) -> str:
        """The number a Messaging Service assigns: the account's first owned number."""
        return min(self.owned_numbers) if self.owned_numbers else MAGIC_FROM_OK
