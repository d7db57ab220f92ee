"""What both sides share at run time: the vault, the upstream session, the audit sink, the
metrics and the timeouts they all obey. A core: the composition root opens these once and
hands each side its share; no side reaches up for them.
"""

from redactor.runtime.shared import SharedHandles, SharedResources

__all__ = ["SharedHandles", "SharedResources"]
