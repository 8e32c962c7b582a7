"""The concepts of smslink as plain typed values: no I/O here.

Everything else (store, engine, CLI, web) passes these around, so they stay small and
free of behaviour beyond what follows from the data itself (e.g. status ordering).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

DEFAULT_BASE_URL = "https://api.twilio.com/2010-04-01"
DEFAULT_POLL_INTERVAL_MS = 10_000
#: 30 polls at the default 10 s interval: five minutes, by which time Twilio has a final
#: status for the vast majority of messages; carriers that never send receipts end as `sent`.
DEFAULT_POLL_ATTEMPTS = 30
#: Twilio limits concurrent API requests per account (about 100 is the usual figure) and the
#: account is shared with other tools; 50 keeps throughput high while leaving headroom.
DEFAULT_CONCURRENCY = 50
#: Seconds to wait for Twilio's answer to one request before it counts as lost.
DEFAULT_REQUEST_TIMEOUT_S = 30.0
#: Country assumed for numbers written without a leading + (ISO 3166 alpha-2).
DEFAULT_REGION = "US"
#: Twilio's own limit (error 21617).
MAX_BODY_CHARS = 1600
MAX_PLACEHOLDERS = 5


class ResultStatus(StrEnum):
    """What a recipient's result row says, in the original connector's vocabulary."""

    DELIVERED = "delivered"  # the handset confirmed receipt
    UNDELIVERED = "undelivered"  # the carrier could not deliver (error_code says why)
    FAILED = "failed"  # Twilio could not send it at all (error_code says why)
    SENT = "sent"  # accepted by the carrier; polling ended before a final receipt
    ERROR = "error"  # never sent: bad input or an API error for this record


class Stage(StrEnum):
    """Where a delivery is in the pipeline; the store keeps it so a run can resume."""

    PENDING = "pending"  # rendered and stored; no POST has been attempted
    POSTING = "posting"  # a POST may be in flight or may have reached Twilio: never resend blindly
    TRACKING = "tracking"  # Twilio accepted it (we hold its sid); polling for a final status
    DONE = "done"  # the result status is final for this run


class RunState(StrEnum):
    """The lifecycle of one send of a touchpoint to one audience."""

    CREATED = "created"  # checked and stored; nothing read or sent yet
    SENDING = "sending"  # reading the audience, posting and tracking (all at once)
    INTERRUPTED = "interrupted"  # stopped by Ctrl-C or a crash; `runs resume` finishes it
    STOPPED = "stopped"  # a configuration error stopped it; fix the connection, then resume
    COMPLETED = "completed"  # every delivery is done and the results file is written


#: Twilio message statuses by progress. A status may only replace one of lower rank,
#: because status reads and callbacks can arrive out of order.
_TWILIO_RANK: dict[str, int] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
    "canceled": 4,
}
#: Every Twilio status smslink knows, with its rank: what SQL needs to compare them in place.
TWILIO_RANKS: Mapping[str, int] = MappingProxyType(_TWILIO_RANK)
#: Twilio statuses after which polling stops (the seed's delivered/undelivered/failed,
#: plus read and canceled which are final too).
TWILIO_FINAL = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})


def twilio_rank(status: str | None) -> int:
    """Progress rank of a Twilio status; unknown statuses rank lowest so they never win."""
    return -1 if status is None else _TWILIO_RANK.get(status, -1)


def advances(current: str | None, new: str | None) -> bool:
    """True when `new` moves a message forward from `current` (never backwards or sideways)."""
    return twilio_rank(new) > twilio_rank(current)


def result_for_twilio_status(status: str) -> ResultStatus:
    """Map a Twilio status at the end of polling onto the seed's result vocabulary.

    Final statuses map onto themselves (read counts as delivered, canceled as failed);
    anything still in flight when the attempts run out is reported as `sent`, as the
    original connector does.
    """
    match status:
        case "delivered" | "read":
            return ResultStatus.DELIVERED
        case "undelivered":
            return ResultStatus.UNDELIVERED
        case "failed" | "canceled":
            return ResultStatus.FAILED
        case _:
            return ResultStatus.SENT


@dataclass(slots=True)
class Connection:
    """A Twilio account as an administrator configured it. The secret is kept out of repr."""

    name: str
    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str | None = None
    messaging_service_sid: str | None = None
    api_key_sid: str | None = None
    base_url: str = DEFAULT_BASE_URL
    poll_interval_ms: int = DEFAULT_POLL_INTERVAL_MS
    poll_attempts: int = DEFAULT_POLL_ATTEMPTS
    concurrency: int = DEFAULT_CONCURRENCY
    region: str = DEFAULT_REGION
    #: Optional cap on segments sent per second (a US long code sends 1, toll-free 3, a short
    #: code 100); None sends as fast as the concurrency allows and Twilio queues the rest.
    max_segments_per_second: float | None = None
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    #: Where Twilio can reach this smslink's web service (e.g. https://sms.example.com);
    #: when set, every message asks Twilio for status callbacks there (domain/callbacks.py)
    #: and polling becomes the fallback. None: polling only.
    callback_base_url: str | None = None

    @property
    def username(self) -> str:
        """Basic-auth user: the API key when one is set, else the account itself."""
        return self.api_key_sid or self.account_sid

    @property
    def from_filter(self) -> str | None:
        """The `From` that finds this connection's messages in a listing.

        None with a Messaging Service: Twilio picks a number from its pool per message.
        """
        return None if self.messaging_service_sid else self.from_number

    @property
    def sender(self) -> str:
        """What the messages come from, for display and for finding them again."""
        return self.messaging_service_sid or self.from_number or ""


@dataclass(frozen=True, slots=True)
class LastTest:
    """How a connection's last Test ended: when, whether it passed, and what answered."""

    at: datetime
    ok: bool
    message: str


@dataclass(slots=True)
class Touchpoint:
    """A message template and where each of its fields comes from in the audience."""

    name: str
    connection: str
    message: str
    phone_column: str
    mapping: dict[str, str] = field(default_factory=dict)  # placeholder -> audience column


@dataclass(frozen=True, slots=True)
class AudienceFacts:
    """What a run knows of its audience file from the check before it started: enough to
    tell that the file changed (size and content hash), and to write results the way the
    file was written (delimiter, `sep=` line, Excel's encodings wanting a BOM)."""

    size: int
    sha256: str
    records: int
    delimiter: str | None = None  # None for JSON Lines
    excel: bool = False
    sep_line: bool = False


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """What a run keeps of its touchpoint, connection and audience as they were when it
    started, so that a resume sends the same message to the same file even if the
    touchpoint was edited in between. Runs started by an older smslink have no
    `audience` (their file cannot be checked) and no `fingerprint`."""

    message: str
    phone_column: str
    mapping: dict[str, str] = field(default_factory=dict)
    region: str = DEFAULT_REGION
    encoding: str | None = None
    #: The run may replace an existing file at its output that is not a results file.
    overwrite: bool = False
    #: Touchpoint and audience content, to refuse a repeated send.
    fingerprint: str | None = None
    audience: AudienceFacts | None = None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        if self.audience is None:
            data.pop("audience")
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> RunSnapshot:
        audience = data.get("audience")
        mapping = data.get("mapping")
        encoding = data.get("encoding")
        fingerprint = data.get("fingerprint")
        return cls(
            message=str(data.get("message", "")),
            phone_column=str(data.get("phone_column", "")),
            mapping=dict(mapping) if isinstance(mapping, dict) else {},
            region=str(data.get("region") or DEFAULT_REGION),
            encoding=str(encoding) if encoding else None,
            overwrite=bool(data.get("overwrite")),
            fingerprint=str(fingerprint) if fingerprint else None,
            audience=AudienceFacts(**audience) if isinstance(audience, dict) else None,
        )


#: `Run.origin` of a journey's standing run.
JOURNEY = "journey"


@dataclass(slots=True)
class Run:
    """One send of a touchpoint to one audience."""

    id: int
    touchpoint: str
    connection: str
    input_path: str
    output_path: str
    state: RunState
    created_at: datetime
    columns: list[str] = field(default_factory=list)  # the audience's header, in order
    total: int = 0  # records stored so far
    audience_complete: bool = False  # every record is stored; until then resume reads on
    #: What started it: "cli", "web" (the service resumes its own runs on restart), or
    #: JOURNEY (a touchpoint's standing run, fed one record at a time by the journey API).
    origin: str = "cli"
    #: Sent by workers (queued), not by the process that started it: workers make sure
    #: every part and its tracking have a job while it is sending.
    queued: bool = False
    error: str | None = None  # why the run stopped, when it did
    finished_at: datetime | None = None
    #: Touchpoint, connection and audience as they were when the run started.
    snapshot: RunSnapshot = field(default_factory=lambda: RunSnapshot("", ""))

    @property
    def is_journey(self) -> bool:
        """A journey's standing run: no audience file and no results file; records arrive
        through the journey API until it is sealed (`audience_complete`)."""
        return self.origin == JOURNEY


@dataclass(slots=True)
class Delivery:
    """One recipient of a run, from its input row to its final result."""

    run_id: int
    seq: int  # position in the audience, 0-based: results come out in this order
    row: dict[str, str]  # the input record as read
    to: str | None = None  # E.164, or None when the phone did not validate
    body: str | None = None
    segments: int = 0
    stage: Stage = Stage.PENDING
    status: ResultStatus | None = None  # set when stage is DONE
    twilio_status: str | None = None  # Twilio's raw status, kept beside ours
    message_sid: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    polls: int = 0  # status reads spent on this message so far
    claimed_at: datetime | None = None  # when the POST attempt began (for reconciliation)
    updated_at: datetime | None = None  # last status change
    #: The identity fields a journey gave with the record (its events carry them); None
    #: for a campaign's record.
    identity: dict[str, str] | None = None


@dataclass(slots=True)
class RunTotals:
    """Counts by stage and result for progress bars and summaries."""

    total: int = 0
    pending: int = 0
    posting: int = 0
    tracking: int = 0
    done: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Outgoing:
    """What the sender needs to POST one delivery, and nothing more (no input row), so a
    claimed batch stays small in memory however wide the audience is."""

    run_id: int
    seq: int
    to: str
    body: str
    segments: int
    claimed_at: datetime


@dataclass(slots=True)
class Progress:
    """The mutable state of a delivery, written back in batches by the send and track loops.

    It carries the whole mutable state rather than a diff, so a batch is one statement shape
    whatever changed; the store never applies it to a delivery that is already DONE.
    """

    run_id: int
    seq: int
    stage: Stage
    status: ResultStatus | None = None
    twilio_status: str | None = None
    message_sid: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    polls: int = 0
    updated_at: datetime | None = None
    #: For a release back to PENDING: the claim it gives back. The store releases only a
    #: delivery still POSTING under that very claim, so a process that lost its lease (it
    #: was paused while another took its work over and claimed it again) cannot undo the
    #: new claim and have it sent twice.
    claimed_at: datetime | None = None


@dataclass(slots=True)
class OptOut:
    """A recipient who replied STOP to a sender.

    Twilio refuses every further message from that sender to them (error 21610) until they
    reply START; remembering it lets later runs skip them instead of spending a request and
    a result row's worth of confusion on a refusal that is certain.
    """

    sender: str  # Connection.sender: the From number, or the Messaging Service SID
    phone: str  # E.164, as the deliveries hold it
    created_at: datetime  # first seen: when Twilio first answered 21610 for this pair
    run_id: int | None = None  # the run that learned it, when one did
    source: str = "twilio"  # what told us: "twilio" (a 21610 answer to a send)
    message: str | None = None  # Twilio's error message, as it answered


class Role(StrEnum):
    """What a person who signs in may do, as in the original platform."""

    ADMIN = "admin"  # connections and users (and everything a marketer does)
    MARKETER = "marketer"  # touchpoints, runs and opt-outs


@dataclass(slots=True)
class User:
    """Someone who signs in to the pages or holds API tokens. No password here: only its
    hash is stored, and it never leaves the store's accounts."""

    id: int
    name: str
    role: Role
    disabled: bool = False
    created_at: datetime | None = None
    #: Sessions issued before this are no longer valid (a reset password, a disabled user).
    password_changed_at: datetime | None = None
    locale: str | None = None  # the pages' language; None: the browser's
    time_zone: str | None = None  # e.g. "Europe/Berlin"; None: UTC

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A bearer token for the REST API as it may be shown: its name and first characters,
    never the token (which is shown once, when created, and kept only as a hash)."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
