"""Limits shared by every smslink process: the pacing state several workers keep together.

Each worker process sends for the same Twilio accounts, so the request window of an
account and the segment rate of a sender must hold across all of them, not per process.
The engine (`smslink.engine.shared_pacing`) keeps the rules and talks to a `PacingBackend`;
this package holds the backend that keeps the state: Redis, one Lua script per operation
so each is one atomic round trip (`smslink.limits.redis`, measured against PostgreSQL in
bench/RESULTS.md section 12, "Shared pacing: Redis or PostgreSQL").

An adapter like `smslink.store`: it imports the domain and its own driver, never the
engine, the application or a face. `redis` is imported only by `smslink.limits.redis`, so
importing this package costs nothing where Redis is not used.
"""

from __future__ import annotations

from smslink.domain.errors import StorageFailed


class PacingUnavailable(StorageFailed):
    """The shared pacing state cannot be reached or answered an error: the run stops as it
    does when its database fails, and resumes once the server is back."""


__all__ = ["PacingUnavailable"]
