"""The store's exceptions, one per thing a caller can act on, each in the one error tree.

`StoreError` marks what the store raises on purpose; each class also belongs to the group
that says what the caller does about it (`smslink.domain.errors`): a wrong name or a
conflict is the caller's input to change, a database from a newer smslink is configuration.
"""

from __future__ import annotations

from smslink.domain.errors import Busy, ConfigurationRefused, InvalidInput, SmslinkError
from smslink.domain.models import Run


class StoreError(SmslinkError):
    """Base of everything the store raises on purpose."""


class NotFound(StoreError, InvalidInput, LookupError):
    """No connection, touchpoint or run by that name or id."""


class AlreadyExists(StoreError, InvalidInput):
    """A connection or touchpoint by that name exists already."""


class InUse(StoreError, InvalidInput):
    """Removing it would leave something else pointing at nothing."""


class SchemaTooNew(StoreError, ConfigurationRefused):
    """The database was written by a newer smslink than this one."""


class RunConflict(StoreError, InvalidInput):
    """A run cannot be created because an earlier one stands in its way: the same touchpoint
    with the same audience fingerprint (`reason` "repeat"), or an unfinished run that will
    write its results to the same file (`reason` "output"). `run` is that earlier run."""

    def __init__(self, run: Run, reason: str) -> None:
        super().__init__(f"run {run.id} conflicts ({reason})")
        self.run = run
        self.reason = reason


class KeyReused(StoreError, InvalidInput):
    """A journey's Idempotency-Key came before with other records: a retry must repeat the
    request exactly, and new records need a new key."""


class RunSealed(StoreError, Busy):
    """A journey's standing run takes no more records (its touchpoint or connection was
    edited meanwhile): the caller opens the current one and tries again."""


class LeaseTaken(StoreError, Busy):
    """A write fenced by a lease found the lease in another process's hands: nothing was
    written (that process settled the run's deliveries from Twilio when it took over)."""
