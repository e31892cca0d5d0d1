"""The audit log: an append-only, tamper-evident record of who changed what, when, why, from what to what.

Writers call `append(conn, ...)` inside the transaction that makes the change, so an event exists exactly when the
change does. `events()` reads it back (filters, time ranges), `verify()` re-computes the hash chain and names the
first edited, inserted or deleted row.
"""

from mlops_desktop.audit.log import (
    GENESIS,
    AuditEvent,
    VerifyReport,
    append,
    current_actor,
    events,
    verify,
)

__all__ = ["GENESIS", "AuditEvent", "VerifyReport", "append", "current_actor", "events", "verify"]
