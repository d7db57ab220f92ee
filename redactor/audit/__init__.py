"""The audit trail: chained records of what was redacted and who resolved what, never a value.

Both sides write here (ingress: messages and their delivery; agent: resolve, reveal and use
decisions; the composition root: start, stop, policy loads, key and vault commands); it
imports neither of them. `verify` walks the chains, `report` answers a security team's
questions.
"""

from redactor.audit.keys import load_audit_key, parse_audit_key, write_audit_key_file
from redactor.audit.sink import (
    AccessEvent,
    AuditEvent,
    AuditRecord,
    AuditSink,
    AuditWriteError,
    DeliveryEvent,
    SinkHealth,
    SystemEvent,
    now_iso,
)

__all__ = [
    "AccessEvent",
    "AuditEvent",
    "AuditRecord",
    "AuditSink",
    "AuditWriteError",
    "DeliveryEvent",
    "SinkHealth",
    "SystemEvent",
    "load_audit_key",
    "now_iso",
    "parse_audit_key",
    "write_audit_key_file",
]
