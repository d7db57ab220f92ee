"""Documents inside values: the view for a string that may hold a document of its own.

Slack sends interactive payloads as a form field `payload` holding JSON; Mailgun's
`message-headers` field is JSON whose values hold RFC 2047 encoded words; JSON strings hold
JSON or HTML. Scanned as flat text, an escape (`\\n4111...`, `\\u0034`) or an encoded word
hides the digits. So a value that parses as such a document is scanned as that document and
re-encoded in place; the codecs nest, and `limits.nested` bounds how deep.
"""

from __future__ import annotations

from redactor.bodies.hidden import hidden_view
from redactor.bodies.html_body import HtmlView, looks_like_html
from redactor.bodies.json_body import JsonView
from redactor.bodies.limits import nested
from redactor.bodies.mime import EncodedWordsView, has_encoded_words
from redactor.bodies.segments import PlainView, TextView
from redactor.errors import BodyUnparseableError

__all__ = ["value_view"]

# No PAN or SSN has fewer digits; a nested JSON document skips shorter strings, as the body does.
_MIN_DIGITS = 9


def _looks_like_json(text: str) -> bool:
    stripped = text.strip()
    # A JSON string literal too (`"\"card \\u0034111...\""`): a reader that parses the
    # value twice reads its escapes (issue 18, item 5).
    return len(stripped) >= 2 and (
        (stripped[0] == "{" and stripped[-1] == "}")
        or (stripped[0] == "[" and stripped[-1] == "]")
        or (stripped[0] == '"' and stripped[-1] == '"' and "\\" in stripped)
    )


def value_view(text: str, field_name: str | None, kind: str) -> TextView:
    """The view for a decoded value: a JSON document, encoded words, HTML, or plain text.

    Raises NestingTooDeepError (and other limit errors) when a nested document is too deep
    or too big; a value that only looks like JSON but is not is scanned as plain text.
    """
    if _looks_like_json(text):
        with nested():
            try:
                return JsonView(text, value_view=value_view, min_segment_digits=_MIN_DIGITS)
            except BodyUnparseableError:
                pass  # braces, but not JSON: plain text below
    if has_encoded_words(text):
        with nested():
            try:
                return EncodedWordsView(text, field_name)
            except BodyUnparseableError:
                pass  # not decodable: scanned as the text it is
    if looks_like_html(text):
        # Intercom/Zendesk keep HTML in JSON strings: scan text nodes, not markup.
        return HtmlView(text, field_name)
    # Base64 (an inbound-mail attachment), `data:` URIs, percent-escaped URLs: read decoded,
    # encoded again in place.
    hidden = hidden_view(text, field_name, kind, _decoded_view)
    if hidden is not None:
        return hidden
    return PlainView(text, field_name, kind)


def _decoded_view(text: str, field_name: str | None, kind: str) -> TextView:
    """The view for text decoded from base64 or a `data:` URI: one document level deeper."""
    with nested():
        return value_view(text, field_name, kind)
