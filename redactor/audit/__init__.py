"""The audit trail: records of what was redacted and who resolved what, never a value.

Both sides write here (ingress: messages redacted; agent: resolve, reveal and use decisions);
it imports neither of them.
"""

from redactor.audit.sink import AccessEvent, AuditEvent, AuditRecord, AuditSink, AuditWriteError

__all__ = ["AccessEvent", "AuditEvent", "AuditRecord", "AuditSink", "AuditWriteError"]
