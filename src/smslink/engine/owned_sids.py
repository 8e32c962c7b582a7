"""The message sids a run owns, for a lost answer's look-up, in memory only until stored.

A look-up (engine/reconcile.py) must never take a message the run already owns: two
records of one recipient with one body would then share a message, and one of them would
never be sent. Keeping every sid of the run in a set did that, at ~110 bytes a message: a
100,000-record run grew by 11 MB, and a journey's run grew for as long as it lived
(bench/RESULTS.md section 15). Once the progress writer has committed a sid, the store's
sid index answers for it, so the set holds only the sids accepted but not stored yet: a few
seconds' worth of sending, whatever the run's size. (A look-up now asks the store, so
it needs the database as the run's other writes do.)
"""

from __future__ import annotations

from collections.abc import Iterable

from smslink.store import Store


class OwnedSids:
    """Answers `sid in owned` for one run: the sids not stored yet, then the store."""

    def __init__(self, store: Store, run_id: int) -> None:
        self._store = store
        self._run_id = run_id
        self._unstored: set[str] = set()

    def add(self, sid: str) -> None:
        """A message Twilio accepted for the run (before its state is stored)."""
        self._unstored.add(sid)

    def stored(self, sids: Iterable[str]) -> None:
        """The progress writer committed rows that hold these sids: the store has them.

        Given to the writer as its `on_stored`, called after the commit with the sids the
        written rows hold (not those of states it skipped or overwrote in the batch), so
        a sid is always in one place or the other, never in neither, while a look-up asks.
        A sid whose state the store skipped (its delivery was final already) stays here
        until the run ends."""
        self._unstored.difference_update(sids)

    def __contains__(self, sid: object) -> bool:
        if not isinstance(sid, str):
            return False
        return sid in self._unstored or self._store.deliveries.holds_sid(self._run_id, sid)

    def unstored(self) -> int:
        """How many sids are held in memory (for tests and benchmarks)."""
        return len(self._unstored)
