"""The simulator's memory: accounts, messages and request counters.

Messages are kept per account in creation order, with per-To and per-From indexes, so a
list request walks only the candidates it can match, and a PageToken is found by bisection
instead of a scan: paging costs O(page), not O(messages).
"""

from __future__ import annotations

import secrets
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter

from smslink.simulator import errors
from smslink.simulator._segments import count_segments
from smslink.simulator.config import SimulatorConfig
from smslink.simulator.lifecycle import Fate, Snapshot, decide_fate, snapshot

_seq_of = attrgetter("seq")


@dataclass(slots=True)
class Message:
    """One outbound message as the simulator remembers it; its status is derived."""

    seq: int  # creation order across the simulator: newest-first means highest seq first
    sid: str
    account_sid: str
    to: str
    sender: str  # the From number shown once a sender is assigned
    service_sid: str | None
    body: str
    num_media: int
    segments: int
    status_callback: str | None
    created: float  # epoch seconds
    fate: Fate
    #: When it leaves 'queued' (epoch seconds): created + queued_s, later when its sender's
    #: queue is backed up (sender_mps). Stored, not recomputed: it depends on the messages
    #: before it, and the status must stay a pure function of the clock.
    dispatch: float


@dataclass(frozen=True, slots=True)
class SentWindow:
    """Bounds on date_sent in whole epoch seconds: lo <= second < hi (None = open)."""

    lo: int | None = None
    hi: int | None = None

    def admits(self, sent_at: float | None) -> bool:
        if sent_at is None:
            return False
        second = int(sent_at)
        return (self.lo is None or second >= self.lo) and (self.hi is None or second < self.hi)


@dataclass(frozen=True, slots=True)
class ListFilter:
    """The list endpoint's filters; None means 'any'."""

    to: str | None = None
    sender: str | None = None
    sent: SentWindow | None = None


@dataclass(slots=True)
class Account:
    """An account the simulator has seen, with its messages in creation order."""

    sid: str
    created: float
    messages: list[Message] = field(default_factory=list)
    by_to: dict[str, list[Message]] = field(default_factory=dict)
    by_sender: dict[str, list[Message]] = field(default_factory=dict)

    def candidates(self, flt: ListFilter) -> list[Message]:
        """The smallest creation-ordered list that holds every message `flt` can match."""
        if flt.to is not None:
            return self.by_to.get(flt.to, [])
        if flt.sender is not None:
            return self.by_sender.get(flt.sender, [])
        return self.messages


@dataclass(slots=True)
class Stats:
    """Request counters, so tests can prove there were no duplicates and count polling."""

    posts: int = 0
    fetches: int = 0
    lists: int = 0
    account_gets: int = 0
    posts_by_to: Counter[str] = field(default_factory=Counter)
    #: Messages created per recipient: above 1 for a distinct recipient means a duplicate.
    messages_by_to: Counter[str] = field(default_factory=Counter)
    #: Faults answered (faults.py): 429s, 5xx, connections dropped before / after a
    #: create, creates whose answer was held; and the most Twilio requests in progress.
    throttled: int = 0
    server_errors: int = 0
    resets_before: int = 0
    resets_after: int = 0
    delayed: int = 0
    peak_concurrency: int = 0
    #: Messages refused with 21611 because their sender's queue was full (sender_mps).
    queue_full: int = 0
    #: Status callbacks answered 2xx / given up after every retry / extra attempts made.
    callbacks_sent: int = 0
    callbacks_failed: int = 0
    callbacks_retried: int = 0
    callbacks_dropped: int = 0


class InvalidPageToken(ValueError):
    """A PageToken that names no message of this listing."""


class SimulatorState:
    """Everything the simulator holds; one instance per app, reset by POST /_reset."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.accounts: dict[str, Account] = {}
        self.messages: dict[str, Message] = {}
        self.stats = Stats()
        self._seq = 0
        #: Called by reset(), e.g. to restart the fault draws so a rerun meets the same faults.
        self.reset_hooks: list[Callable[[], None]] = []
        #: Per (account, sender): when its queue next has capacity (epoch seconds).
        self._sender_free: dict[tuple[str, str], float] = {}
        #: Per message sid: (status, POST started, 2xx answer) of each status callback the
        #: receiver took, epoch seconds; for benchmarks (GET /_timeline).
        self.callback_times: dict[str, list[tuple[str, float, float]]] = {}

    def reset(self) -> None:
        """Forget every account, message and counter."""
        self.accounts.clear()
        self.messages.clear()
        self.stats = Stats()
        self._seq = 0
        self._sender_free.clear()
        self.callback_times.clear()
        for hook in self.reset_hooks:
            hook()

    def account(self, sid: str) -> Account:
        """The account `sid`, created on first sight (any well-formed sid exists here)."""
        found = self.accounts.get(sid)
        if found is None:
            found = self.accounts[sid] = Account(sid, self.clock())
        return found

    def create(
        self,
        account_sid: str,
        *,
        to: str,
        from_: str | None,
        service_sid: str | None,
        body: str,
        num_media: int = 0,
        status_callback: str | None = None,
    ) -> Message:
        """Store a new, already validated message and decide its fate.

        Raises errors.sender_queue_full() (21611), storing nothing, when the sender's queue
        cannot take the message.
        """
        sender = from_ or self.config.service_sender
        segments = count_segments(body)
        created = self.clock()
        dispatch = self._reserve_slot(account_sid, sender, segments, created)
        self._seq += 1
        prefix = "MM" if num_media else "SM"
        msg = Message(
            seq=self._seq,
            sid=prefix + secrets.token_hex(16),
            account_sid=account_sid,
            to=to,
            sender=sender,
            service_sid=service_sid,
            body=body,
            num_media=num_media,
            segments=segments,
            status_callback=status_callback,
            created=created,
            fate=decide_fate(self.config, to),
            dispatch=dispatch,
        )
        account = self.account(account_sid)
        account.messages.append(msg)
        account.by_to.setdefault(to, []).append(msg)
        account.by_sender.setdefault(msg.sender, []).append(msg)
        self.messages[msg.sid] = msg
        self.stats.messages_by_to[to] += 1
        return msg

    def _reserve_slot(self, account_sid: str, sender: str, segments: int, now: float) -> float:
        """When a new message from `sender` leaves 'queued', taking its place in the queue.

        Like Twilio, a sender sends `sender_mps` segments per second and queues the rest:
        the message's turn comes at max(now, sender's next free time), which then moves on by
        segments / mps. The queued phase still lasts at least queued_s (processing), so with
        no backlog nothing changes. A message that would leave more than sender_queue_s of
        backlog behind it is 21611.
        """
        mps = self.config.sender_mps
        if mps is None:
            return now + self.config.queued_s
        key = (account_sid, sender)
        turn = max(now, self._sender_free.get(key, now))
        free = turn + segments / mps
        # A hair of tolerance so that exactly sender_queue_s of backlog still fits despite
        # the float sum of many segments / mps steps.
        if free - now > self.config.sender_queue_s + 1e-9:
            self.stats.queue_full += 1
            raise errors.sender_queue_full()
        self._sender_free[key] = free
        return turn + self.config.queued_s

    def get(self, account_sid: str, sid: str) -> Message | None:
        """The message `sid` when it belongs to `account_sid`."""
        msg = self.messages.get(sid)
        return msg if msg is not None and msg.account_sid == account_sid else None

    def snapshot(self, msg: Message, now: float | None = None) -> Snapshot:
        """The status of `msg` now (or at `now`)."""
        at = self.clock() if now is None else now
        via_service = msg.service_sid is not None
        return snapshot(self.config, msg.fate, msg.created, via_service, at, msg.dispatch)

    def page(
        self,
        account_sid: str,
        flt: ListFilter,
        size: int,
        *,
        after: str | None = None,
        before: str | None = None,
        skip: int = 0,
        now: float | None = None,
    ) -> tuple[list[Message], bool]:
        """One page, newest first, and whether more matches lie beyond it.

        `after` (PA token) starts just older than that message, `before` (PB token) ends just
        newer than it (and then "beyond" means newer); without a token the first `skip`
        matches are passed over, so a bare `Page=N` still works.
        """
        at = self.clock() if now is None else now
        account = self.accounts.get(account_sid)
        pool = account.candidates(flt) if account is not None else []
        if before is not None:
            start = bisect_right(pool, self._seq_of_token(before), key=_seq_of)
            found, more = self._take(self._matching(pool, range(start, len(pool)), flt, at), size)
            found.reverse()
            return found, more
        stop = len(pool)
        if after is not None:
            stop = bisect_left(pool, self._seq_of_token(after), key=_seq_of)
        matches = self._matching(pool, range(stop - 1, -1, -1), flt, at)
        for _ in range(skip if after is None else 0):
            if next(matches, None) is None:
                break
        return self._take(matches, size)

    def _seq_of_token(self, token_sid: str) -> int:
        """Where a page token's message sits in creation order; the message need not match
        the filters, so a token stays valid even if that message's status moved on."""
        msg = self.messages.get(token_sid)
        if msg is None:
            raise InvalidPageToken(token_sid)
        return msg.seq

    def _matching(
        self, pool: list[Message], indexes: range, flt: ListFilter, now: float
    ) -> Iterator[Message]:
        for i in indexes:
            msg = pool[i]
            if flt.to is not None and msg.to != flt.to:
                continue
            if flt.sender is not None and msg.sender != flt.sender:
                continue
            if flt.sent is not None and not flt.sent.admits(self.snapshot(msg, now).sent_at):
                continue
            yield msg

    @staticmethod
    def _take(matches: Iterator[Message], size: int) -> tuple[list[Message], bool]:
        found: list[Message] = []
        for msg in matches:
            if len(found) == size:
                return found, True
            found.append(msg)
        return found, False

    def timeline_json(self) -> dict[str, object]:
        """GET /_timeline: when each message was created and reached its status as of now
        (epoch seconds; `final` tells whether that status is final) and the callbacks the
        receiver took, in creation order. For benchmarks timing a client against the
        simulator's own clock."""
        now = self.clock()
        items = []
        for msg in sorted(self.messages.values(), key=_seq_of):
            snap = self.snapshot(msg, now)
            items.append(
                {
                    "sid": msg.sid,
                    "to": msg.to,
                    "created": msg.created,
                    "status": snap.status,
                    "status_at": snap.updated_at,
                    "final": snap.final,
                    "callbacks": [list(c) for c in self.callback_times.get(msg.sid, ())],
                }
            )
        return {"now": now, "messages": items}

    def stats_json(self) -> dict[str, object]:
        """The counters as GET /_stats shows them."""
        s = self.stats
        return {
            "posts": s.posts,
            "gets": s.fetches + s.lists + s.account_gets,
            "fetches": s.fetches,
            "lists": s.lists,
            "account_gets": s.account_gets,
            "posts_by_to": dict(s.posts_by_to),
            "messages_by_to": dict(s.messages_by_to),
            "messages": len(self.messages),
            "throttled": s.throttled,
            "server_errors": s.server_errors,
            "resets_before": s.resets_before,
            "resets_after": s.resets_after,
            "delayed": s.delayed,
            "peak_concurrency": s.peak_concurrency,
            "queue_full": s.queue_full,
            "callbacks_sent": s.callbacks_sent,
            "callbacks_failed": s.callbacks_failed,
            "callbacks_retried": s.callbacks_retried,
            "callbacks_dropped": s.callbacks_dropped,
        }
