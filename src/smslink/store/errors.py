"""The store's exceptions, one per thing a caller can act on."""

from __future__ import annotations


class StoreError(Exception):
    """Base of everything the store raises on purpose."""


class NotFound(StoreError, LookupError):
    """No connection, touchpoint or run by that name or id."""


class AlreadyExists(StoreError):
    """A connection or touchpoint by that name exists already."""


class InUse(StoreError):
    """Removing it would leave something else pointing at nothing."""


class SchemaTooNew(StoreError):
    """The database was written by a newer smslink than this one."""


class RunConflict(StoreError):
    """A run cannot be created because an earlier one stands in its way: the same touchpoint
    with the same audience fingerprint (`reason` "repeat"), or an unfinished run that will
    write its results to the same file (`reason` "output"). `run` is that earlier run."""

    def __init__(self, run: object, reason: str) -> None:
        super().__init__(f"run {getattr(run, 'id', '?')} conflicts ({reason})")
        self.run = run
        self.reason = reason
