"""The tables, as SQLAlchemy Core metadata that creates identically on SQLite and PostgreSQL.

This is the newest schema, the one the store's statements are written against; the
revisions in migrations/ are how a database gets here, and a test checks that they build
exactly these tables.

Enums are stored as their string values and JSON as plain text rather than native ENUM/JSONB:
the same bytes on both backends, and adding a status needs no ALTER TYPE migration.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator

from smslink.domain.models import DEFAULT_REQUEST_TIMEOUT_S
from smslink.store.rows import utc_or_none

#: Bump with every change to the tables below, together with a new revision in
#: store/migrations/versions named after it (see the README there).
#: 1: the first release. 2: connections.max_segments_per_second and .request_timeout_s, and
#: the optouts table. 3: runs.stop_requested_at. 4: users, api_tokens, runs.origin.
#: 5: optout_removals. 6: connections.callback_base_url and callback_tokens. 7: events.
#: 8: webhook_subscriptions. 9: deliveries.identity_json and intake_keys (journeys).
#: 10: deliveries.part, run_parts and workers (and procrastinate's tables on PostgreSQL).
#: 11: the deliveries' part index on PostgreSQL only.
SCHEMA_VERSION = 11


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on both backends.

    SQLite has no timezone type and SQLAlchemy writes a datetime's wall-clock fields as they
    are, so a non-UTC value would silently shift; we convert to UTC first and re-attach UTC
    on read. Naive values are taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return utc_or_none(value)


metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

connections = Table(
    "connections",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("account_sid", String(64), nullable=False),
    # Fernet token of the auth token (or API key secret); never the plaintext.
    Column("auth_token_encrypted", Text, nullable=False),
    Column("from_number", String(32)),
    Column("messaging_service_sid", String(64)),
    Column("api_key_sid", String(64)),
    Column("base_url", Text, nullable=False),
    Column("poll_interval_ms", Integer, nullable=False),
    Column("poll_attempts", Integer, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("region", String(8), nullable=False),
    # Added in version 2 (revision 0002 adds them to older databases). NULL: no cap, as
    # before. The timeout needs a server default: ALTER TABLE ADD COLUMN ... NOT NULL fills
    # the rows a version 1 database already holds with it.
    Column("max_segments_per_second", Float),
    Column(
        "request_timeout_s",
        Float,
        nullable=False,
        server_default=text(repr(float(DEFAULT_REQUEST_TIMEOUT_S))),
    ),
    # The last Test (version 4): when, whether it passed, and what answered, so the
    # connections page can show it; NULL until the first test.
    Column("last_test_at", UTCDateTime),
    Column("last_test_ok", Boolean),
    Column("last_test_message", Text),
    # Where Twilio posts status callbacks (version 6); NULL: polling only.
    Column("callback_base_url", Text),
)

touchpoints = Table(
    "touchpoints",
    metadata,
    Column("name", String(200), primary_key=True),
    # RESTRICT: removing a connection that touchpoints use fails in the database itself,
    # so no check-then-delete race between two administrators.
    Column(
        "connection",
        String(200),
        ForeignKey("connections.name", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("message", Text, nullable=False),
    Column("phone_column", Text, nullable=False),
    Column("mapping_json", Text, nullable=False),
)

# Runs name their touchpoint and connection without a foreign key: a finished run's history
# outlives the configuration it was sent with (its settings column keeps a snapshot).
runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("touchpoint", String(200), nullable=False),
    Column("connection", String(200), nullable=False),
    Column("input_path", Text, nullable=False),
    Column("output_path", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("columns_json", Text, nullable=False),
    Column("total", Integer, nullable=False, default=0),
    # True once every record of the audience is stored; until then a resume reads on.
    Column("audience_complete", Boolean, nullable=False, default=False),
    Column("error", Text),
    Column("finished_at", UTCDateTime),
    Column("settings_json", Text, nullable=False),
    # Who is working on the run and until when: one process at a time may send and track it,
    # or a resume could take another process's in-flight POSTs for crash leftovers.
    Column("lease_owner", String(200)),
    Column("lease_expires", UTCDateTime),
    # Set when someone asks a run that is being sent to stop (a web page's Stop button,
    # `runs stop`): the process working on it sees it within a second and stops resumably.
    Column("stop_requested_at", UTCDateTime),
    # What started it: "cli" (a command, resumed by a person), "web" (the service, which
    # resumes its own runs when it restarts), "journey" (a touchpoint's standing run that
    # the journey API appends records to; `audience_complete` set when it takes no more).
    # Version 4.
    Column("origin", String(16), nullable=False, server_default=text("'cli'")),
    # Sent by workers rather than by the process that started it (version 10).
    Column("queued", Boolean, nullable=False, server_default=text("false")),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("row_json", Text, nullable=False),
    # `to` is an SQL keyword; a plain name keeps hand-written queries painless.
    Column("to_number", String(32)),
    Column("body", Text),
    Column("segments", Integer, nullable=False),
    Column("stage", String(16), nullable=False),
    Column("status", String(16)),
    Column("twilio_status", String(32)),
    Column("message_sid", String(64)),
    Column("error_code", Integer),
    Column("error_message", Text),
    Column("polls", Integer, nullable=False),
    Column("claimed_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    # The identity fields a journey gave with the record (version 9), which its events
    # carry back; NULL for a campaign's records (their results file carries the row).
    Column("identity_json", Text),
    # Which part of its run the delivery belongs to (version 10; domain/parts.py): workers
    # send a run part by part, each part held by one worker at a time, and every record of
    # one recipient is in the same part.
    Column("part", Integer, nullable=False, server_default=text("0")),
    # claim_pending and iter_deliveries(stages=...) walk one stage of one run in seq order.
    Index("ix_deliveries_run_stage_seq", "run_id", "stage", "seq"),
    # A worker claims and settles within its part. Workers need PostgreSQL: on SQLite the
    # index would only cost every stage change a write (version 11).
    Index("ix_deliveries_run_part_stage_seq", "run_id", "part", "stage", "seq").ddl_if(
        dialect="postgresql"
    ),
    # status callbacks arrive with only the sid.
    Index("ix_deliveries_message_sid", "message_sid"),
)

# Recipients who replied STOP to a sender (Twilio error 21610), so later runs skip them. Keyed
# by sender and phone: an opt-out is between one recipient and one sender (a From number, or a
# Messaging Service, which Twilio treats as one sender for STOP), never global. No foreign
# keys: an opt-out outlives the run that learned it and any connection using that sender.
optouts = Table(
    "optouts",
    metadata,
    Column("sender", String(64), primary_key=True),
    Column("phone", String(32), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("run_id", Integer),
    Column("source", String(32), nullable=False),
    Column("message", Text),
    # `optouts remove PHONE` without a sender removes the phone's opt-outs for every sender.
    Index("ix_optouts_phone", "phone"),
)

# People who sign in to the web pages (version 4). A role decides what they may do:
# administrators configure connections and users, marketers touchpoints, runs and opt-outs.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    # Argon2id, with its parameters and salt in the string; never the password.
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Sessions issued before this moment are no longer valid (password reset, disabling).
    Column("password_changed_at", UTCDateTime, nullable=False),
    # The pages' language ("de", "en") and time zone ("Europe/Berlin"); NULL: the browser's.
    Column("locale", String(16)),
    Column("time_zone", String(64)),
)

# Bearer tokens for the REST API (version 4): only their SHA-256 is kept, so a copied
# database gives nobody a token; the first characters stay visible to tell them apart.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

# Opt-outs someone removed (version 5): who, when and why, with what the opt-out was, so an
# opt-out never disappears without a trace (a recipient who replied START, one recorded by
# mistake). No foreign keys: the history outlives the user, the run and the opt-out itself.
optout_removals = Table(
    "optout_removals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sender", String(64), nullable=False),
    Column("phone", String(32), nullable=False),
    # The opt-out as it was: since when, and the run that learned it.
    Column("opted_out_at", UTCDateTime, nullable=False),
    Column("run_id", Integer),
    Column("removed_at", UTCDateTime, nullable=False),
    # The user's name at the time; NULL: removed from the command line (no user there).
    Column("removed_by", String(200)),
    Column("reason", Text),
    # The opt-outs page shows a phone's removals beside its search.
    Index("ix_optout_removals_phone", "phone"),
)

# Status callbacks already applied, by Twilio's `I-Twilio-Idempotency-Token` (version 6): a
# callback Twilio retries (it could not tell that the first attempt arrived) is applied
# once. Kept a day (Twilio's retries end within 15 seconds), then pruned.
callback_tokens = Table(
    "callback_tokens",
    metadata,
    Column("token", String(128), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_callback_tokens_received_at", "received_at"),
)

# Every status change of a delivery (version 7), written in the same transaction as the
# change itself (store/events.py): the history the events API streams. `id` is the global
# order and a reader's cursor: AUTOINCREMENT on SQLite so an id is never handed out twice,
# and on PostgreSQL events commit in id order (a lock around their insert). `status` is
# the product's result on a delivery's one final event, NULL on the ones before. No
# foreign key: the history is read on its own, and journeys will add deliveries of theirs.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("status", String(16)),
    Column("twilio_status", String(32)),
    Column("error_code", Integer),
    Column("error_message", Text),
    Column("segments", Integer, nullable=False),
    Column("message_sid", String(64)),
    # A delivery's own events, in order.
    Index("ix_events_run_seq", "run_id", "seq"),
    sqlite_autoincrement=True,
)

# Where delivery events are posted (version 8): a URL, every touchpoint's events or one's
# (`touchpoint` NULL: all), signed with a secret kept Fernet-encrypted like connections'
# auth tokens. `last_event_id` is the cursor over events.id: every event up to it was
# delivered (or is not this subscription's), so events go out in order, one at a time,
# and a restart resumes after it. A failing subscription counts `attempts` since
# `failing_since` and waits until `next_attempt_at`; after too long it is disabled
# (`disabled_at`, `disabled_reason`) until an administrator enables it again. No foreign
# key to touchpoints: a subscription outlives the touchpoint it names.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("touchpoint", String(200)),
    # Fernet token of the `whsec_...` secret; never the plaintext.
    Column("secret_encrypted", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The user's name at the time; NULL: added without a user (the command line).
    Column("created_by", String(200)),
    Column("last_event_id", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("failing_since", UTCDateTime),
    Column("disabled_at", UTCDateTime),
    Column("disabled_reason", Text),
    Column("last_error", Text),
    sqlite_autoincrement=True,
)

# What the journey API was already asked (version 9), so that a repeated request (a
# journey's retry after a timeout) answers what the first one did and sends nothing again.
# `key` is "request:<Idempotency-Key header>" (the whole request's answer) or
# "identity:<SHA-256 of the record's identity>" (one record's). `request_sha256` tells a
# key reused with another body. Remembered for `INTAKE_KEY_HOURS` (engine/intake.py), then
# pruned. No foreign key: the answer names deliveries by their public ids.
intake_keys = Table(
    "intake_keys",
    metadata,
    Column("touchpoint", String(200), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("request_sha256", String(64)),
    Column("answer_json", Text, nullable=False),
    Index("ix_intake_keys_created_at", "created_at"),
)

# Who is sending which part of a run (version 10): a part's lease, as the run's own lease
# in `runs`, lets one worker at a time claim, post and settle that part's deliveries.
run_parts = Table(
    "run_parts",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("lease_owner", String(200)),
    Column("lease_expires", UTCDateTime),
)

# Live workers (version 10): each writes its row every few seconds (what it sends, how
# fast), so `smslink workers` can list them; a row not seen for a minute is a dead worker.
workers = Table(
    "workers",
    metadata,
    Column("owner", String(200), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("queues", Text, nullable=False),
    Column("posted", Integer, nullable=False),
    Column("rate", Float, nullable=False),
    Column("runs_json", Text, nullable=False),
    Index("ix_workers_seen_at", "seen_at"),
)
