"""The egress verifier: a second, independent reader of everything that leaves (issue 18).

A core: it imports no side. Redaction hands it the values it read (`SeenValues`); it reads
the outgoing bytes the most generous way and refuses what redaction could not have read.
"""

from redactor.egress.readings import EgressLimits
from redactor.egress.seen import SeenValues
from redactor.egress.verifier import verify_answer, verify_request

__all__ = ["EgressLimits", "SeenValues", "verify_answer", "verify_request"]
