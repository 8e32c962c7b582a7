"""Twilio status callbacks, received by the web service and applied to deliveries.

Twilio POSTs each status change of a message created with a `StatusCallback` (see
`domain/callbacks.py` for the URL and its retry fragment). What a callback may do here:

- nothing at all unless `X-Twilio-Signature` proves that Twilio sent it: the signature is
  an HMAC of the URL and the form under the connection's auth token. API-key connections
  cannot have callbacks (their rules refuse a callback base URL): Twilio signs with the
  account's auth token, which such a connection does not hold, so a callback to one is
  refused like a forgery and its messages are polled.
- once only, by its `I-Twilio-Idempotency-Token` (kept a day, then pruned);
- forward only: the store applies it in one conditional statement that never moves a
  status backwards and never touches a finished delivery (store/callbacks.py says how it
  and the tracker's own writes cannot undo each other).

A callback for a message no delivery holds is accepted (refusing it would only make Twilio
retry it) and kept in this process's memory for a few seconds (EARLY_RETRIES_S): it may
have come before the create's answer was stored, and then applies on a later try, before
any later callback of the same message. Another tool's message on the same account, or a
run deleted since, is let go after the last try.

The web service hands over the callbacks that arrive together (`receive_many`): one
transaction for all of them.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from smslink.domain.callbacks import RETRY_FRAGMENT, signed_url_candidates, status_update
from smslink.domain.models import Connection, twilio_rank
from smslink.domain.names import check_name
from smslink.store import Applied, CallbackWrite, NotFound, Store
from smslink.twilio.signature import is_valid_signature

#: How long an idempotency token is remembered: Twilio's retries end within its 15-second
#: total time budget, so a day is generous.
TOKEN_TTL = timedelta(days=1)
#: How often (seconds, per process) old tokens are pruned.
PRUNE_EVERY_S = 3600.0
#: How long a connection read for a callback is used before it is read again (a changed
#: token or callback base URL takes effect within this).
CONNECTION_TTL_S = 5.0
#: The longest token kept (the column's width); a longer one is not Twilio's.
MAX_TOKEN_CHARS = 128


#: A callback for a sid no delivery holds is tried again this long after it arrived
#: (seconds, one try each): Twilio may call before the create's answer is stored (the
#: progress writer stores answers every quarter second; `sending` comes ~0.2 s after the
#: create, a quick `failed` sooner). After the last try it is let go: it was another
#: tool's message on the account, or polling finds the status.
EARLY_RETRIES_S = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: Most callbacks kept for another try; past it the oldest are let go (polling covers them).
MAX_EARLY = 10_000


class CallbackOutcome(StrEnum):
    """What the receiver answers: refused (403) or accepted (2xx, whatever it changed)."""

    REFUSED = "refused"  # no connection of that name, or no valid signature: nothing changed
    APPLIED = "applied"
    STALE = "stale"
    UNKNOWN = "unknown"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # signed, but not a status update smslink can read

    @property
    def accepted(self) -> bool:
        return self is not CallbackOutcome.REFUSED


@dataclass(frozen=True, slots=True)
class StatusCallback:
    """One callback request as the web face received it."""

    connection: str
    form: list[tuple[str, str]]  # every form field in order, repeated names included
    signature: str | None
    idempotency_token: str | None = None
    #: The URL as this server saw it (behind a proxy, not what Twilio called): checked
    #: besides the one smslink gave Twilio, so a renamed host or a changed callback base
    #: URL does not lock out callbacks of messages sent before.
    request_url: str | None = None


class Callbacks:
    """Receives the status callbacks of every connection of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._next_prune = 0.0
        # Twilio posts a run's callbacks by the thousand: the connection (a read and a
        # decryption) is kept a few seconds, and this process writes one batch of
        # callbacks at a time. Threads racing for SQLite's one write lock would mostly
        # sleep in its busy handler; queued on this lock they commit back to back.
        self._connections: dict[str, tuple[float, Connection | None]] = {}
        self._write = threading.Lock()
        self._early = _Kept()  # callbacks that came before their sid was stored
        self._arrivals = itertools.count()

    def receive(self, callback: StatusCallback) -> CallbackOutcome:
        """Check, de-duplicate and apply one callback; never raises for a bad request."""
        [outcome] = self.receive_many([callback])
        return outcome

    def receive_many(self, callbacks: Sequence[StatusCallback]) -> list[CallbackOutcome]:
        """`receive` for each of `callbacks`, in their order, applied in one transaction
        (the web face hands over the callbacks that arrived while the last batch was
        written: one commit for many). Raises only when the store fails, and then none of
        them is applied.

        A callback for a sid no delivery holds yet is kept and tried again
        (EARLY_RETRIES_S), and a later callback for the same sid is applied after it, in
        the same transaction: a message's statuses are applied in the order Twilio sent
        them, so none of its events is skipped because a later status came first."""
        outcomes: list[CallbackOutcome | None] = []
        writes: list[CallbackWrite] = []
        for callback in callbacks:
            checked = self._check(callback)
            if isinstance(checked, CallbackOutcome):
                outcomes.append(checked)
            else:
                outcomes.append(None)
                writes.append(checked)
        if writes:
            found = iter(self._apply_with_kept(writes))
            outcomes = [o if o is not None else CallbackOutcome(next(found)) for o in outcomes]
        return [o for o in outcomes if o is not None]

    def _apply_with_kept(self, writes: list[CallbackWrite]) -> list[Applied]:
        """Apply `writes` after whatever is kept of the same messages; keep those that find
        no delivery. One lock from taking the kept ones out to keeping what is left: no
        other batch or retry can apply a message's later status in between."""
        with self._write:
            arrived = time.monotonic()
            earlier = self._early.take_of({w.update.sid for w in writes})
            try:
                applied = self._apply([kept.write for kept in earlier] + writes)
            except Exception:
                self._early.put_back(earlier)
                raise
            self._early.put_back(
                [k for k, o in zip(earlier, applied, strict=False) if o is Applied.UNKNOWN]
            )
            applied = applied[len(earlier) :]
            for write, outcome in zip(writes, applied, strict=True):
                if outcome is Applied.UNKNOWN and twilio_rank(write.update.status) >= 0:
                    # A status smslink knows, for a message it may not have stored yet.
                    self._early.keep(_KeptWrite(write, arrived, next(self._arrivals)))
        return applied

    @property
    def early_waiting(self) -> int:
        """How many callbacks wait for another try (their sid was not stored yet)."""
        return len(self._early)

    def retry_early(self, now: float | None = None, *, most: int = 200) -> int:
        """Apply again the kept callbacks that are due (`now`: `time.monotonic()`), at most
        `most` of them in one transaction; how many found their delivery this time. The
        web service calls this several times a second while any wait. A try that fails
        (the store is away, or refuses one of them) is spent all the same, so none is kept
        past its last try."""
        with self._write:
            due = self._early.take_due(time.monotonic() if now is None else now, most)
            if not due:
                return 0
            # With them, whatever is kept of the same messages (not due yet), all in the
            # order they arrived: a message's statuses are applied in Twilio's order.
            along = self._early.take_of({kept.write.update.sid for kept in due})
            tried = sorted([*due, *along], key=lambda kept: kept.order)
            due_ids = {id(kept) for kept in due}
            try:
                applied = self._apply([kept.write for kept in tried])
            except Exception:
                self._early.put_back(along)
                for kept in due:
                    self._keep_for_next_try(kept)
                raise
            for kept, outcome in zip(tried, applied, strict=True):
                if outcome is not Applied.UNKNOWN:
                    continue
                if id(kept) in due_ids:
                    self._keep_for_next_try(kept)
                else:
                    self._early.put_back([kept])  # not its turn: no try spent
        return sum(1 for outcome in applied if outcome is not Applied.UNKNOWN)

    def _keep_for_next_try(self, kept: _KeptWrite) -> None:
        if kept.tries + 1 < len(EARLY_RETRIES_S):
            self._early.keep(replace(kept, tries=kept.tries + 1))

    def _apply(self, writes: list[CallbackWrite]) -> list[Applied]:
        """Apply `writes` in one transaction (the caller holds `_write`)."""
        now = datetime.now(UTC)
        applied = self._store.callbacks.apply_statuses(writes, received_at=now)
        self._prune(now)
        return applied

    def _check(self, callback: StatusCallback) -> CallbackWrite | CallbackOutcome:
        """What `callback` asks the store to do, or why it is not asked to do anything."""
        connection = self._connection(callback.connection)
        if connection is None:
            return CallbackOutcome.REFUSED
        if connection.api_key_sid or not callback.signature or not connection.auth_token:
            return CallbackOutcome.REFUSED
        params: dict[str, list[str]] = {}
        for name, value in callback.form:
            params.setdefault(name, []).append(value)
        urls = _candidates(connection.callback_base_url, connection.name, callback.request_url)
        if not any(
            is_valid_signature(connection.auth_token, url, params, callback.signature)
            for url in urls
        ):
            return CallbackOutcome.REFUSED
        update = status_update({name: values[0] for name, values in params.items()})
        if update is None:
            return CallbackOutcome.IGNORED
        token = callback.idempotency_token
        if token is not None and not 0 < len(token) <= MAX_TOKEN_CHARS:
            token = None  # not Twilio's: applying twice is harmless anyway (forward only)
        return CallbackWrite(update, token, connection.name)

    def _connection(self, name: str) -> Connection | None:
        """The named connection (None: there is none), read again after CONNECTION_TTL_S."""
        cached = self._connections.get(name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            check_name(name)  # no connection has another name (nor NUL, which PostgreSQL refuses)
            connection: Connection | None = self._store.catalogue.get_connection(name)
        except (NotFound, ValueError):
            connection = None
        if len(self._connections) > 1000:
            self._connections.clear()
        self._connections[name] = (time.monotonic() + CONNECTION_TTL_S, connection)
        return connection

    def _prune(self, now: datetime) -> None:
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            self._store.callbacks.prune_tokens(now - TOKEN_TTL)


def _candidates(base_url: str | None, name: str, request_url: str | None) -> list[str]:
    """Every URL the signature may be over, each once: the StatusCallback smslink gives
    Twilio (with and without its fragment), and the URL this server saw."""
    found: list[str] = []
    options: Iterable[str] = signed_url_candidates(base_url, name) if base_url else ()
    if request_url:
        bare = request_url.partition("#")[0]
        options = [*options, bare, f"{bare}#{RETRY_FRAGMENT}"]
    for url in options:
        if url not in found:
            found.append(url)
    return found


@dataclass(frozen=True, slots=True)
class _KeptWrite:
    """A callback kept for another try: when it arrived and how many tries it has had."""

    write: CallbackWrite
    arrived: float  # time.monotonic()
    order: int  # arrival order (unique), also among callbacks that arrived in one batch
    tries: int = 0

    @property
    def due(self) -> float:
        return self.arrived + EARLY_RETRIES_S[self.tries]


class _Kept:
    """The callbacks kept for another try, soonest due first, findable by sid (so a later
    callback of the same message is applied after them). Safe to use from several
    threads."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _KeptWrite]] = []  # (due, order, kept)
        self._by_sid: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._heap)

    def keep(self, kept: _KeptWrite) -> None:
        with self._lock:
            self._push(kept)
            if len(self._heap) > MAX_EARLY:  # let the one that arrived first go
                first = min(self._heap, key=lambda entry: entry[1])
                self._remove([first])

    def put_back(self, kept: Sequence[_KeptWrite]) -> None:
        """Keep again, as they were, callbacks taken out for a try that did not apply."""
        with self._lock:
            for one in kept:
                self._push(one)

    def take_due(self, now: float, most: int) -> list[_KeptWrite]:
        """Take out up to `most` callbacks due at `now`, in the order they fall due."""
        taken: list[_KeptWrite] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now and len(taken) < most:
                _, _, kept = heapq.heappop(self._heap)
                self._forget(kept.write.update.sid)
                taken.append(kept)
        return taken

    def take_of(self, sids: set[str]) -> list[_KeptWrite]:
        """Take out every callback kept for one of `sids`, in the order they arrived."""
        with self._lock:
            if not any(sid in self._by_sid for sid in sids):
                return []
            taken = [entry for entry in self._heap if entry[2].write.update.sid in sids]
            self._remove(taken)
        return [kept for _, _, kept in sorted(taken, key=lambda entry: entry[1])]

    def _push(self, kept: _KeptWrite) -> None:
        heapq.heappush(self._heap, (kept.due, kept.order, kept))
        self._by_sid[kept.write.update.sid] += 1

    def _remove(self, entries: list[tuple[float, int, _KeptWrite]]) -> None:
        gone = {id(entry) for entry in entries}
        self._heap = [entry for entry in self._heap if id(entry) not in gone]
        heapq.heapify(self._heap)
        for _, _, kept in entries:
            self._forget(kept.write.update.sid)

    def _forget(self, sid: str) -> None:
        self._by_sid[sid] -= 1
        if self._by_sid[sid] <= 0:
            del self._by_sid[sid]
