"""Body codecs: parse a request body into scannable segments and rebuild it from edits.

Pure and synchronous: bytes in, values out; no I/O, no clock. `parse_body` dispatches on the
content type; each codec's module docstring says which edge cases it decides and how.
"""

from redactor.bodies.content_encoding import UnsupportedContentEncodingError
from redactor.bodies.registry import parse_body
from redactor.bodies.segments import Edit, ParsedBody, Segment

__all__ = ["Edit", "ParsedBody", "Segment", "UnsupportedContentEncodingError", "parse_body"]
