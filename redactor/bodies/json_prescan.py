"""A fast first look at JSON bodies: the texts that could hold a value, or "use the codec".

Most webhooks carry no card number. Proving that costs one `json.loads` (C) and a detector
call on the few strings with enough digits, instead of the position-preserving scan that
rewriting needs (benchmarks/README.md, Proxy: the scan was a third of a message's CPU).

It answers only where the answer is certain to match the full codec (json_body.py): a plain
string is that codec's segment text exactly, under the same field name. Anything the codec
treats specially (HTML inside a string, a 12-19 digit integer, a charset other than UTF-8,
a BOM, invalid JSON, a string that holds a document of its own: JSON or encoded words) sends
the body to the codec instead. Object keys are texts too, under the key their object sits
under. Bodies over `MAX_PRESCAN_BYTES` go to the codec directly: its limits (fields,
nesting) stop a hostile document before it is built, where `json.loads` would build it whole.
"""

from __future__ import annotations

import json
from typing import Any

from redactor.bodies.html_body import looks_like_html
from redactor.bodies.limits import BodyLimits
from redactor.bodies.mime import parse_content_type
from redactor.detection.digits import digit_count
from redactor.errors import NestingTooDeepError, TooManyDigitsError, TooManyFieldsError

__all__ = ["plain_json_texts"]

# Fewer digits than this cannot hold a PAN (12+) or an SSN (9).
MIN_DIGITS = 9
MAX_PRESCAN_BYTES = 1024 * 1024
_JSON_TYPES = frozenset({"application/json", "text/json"})
_ENCODINGS_WE_SKIP = (None, "", "identity")


def _reject_constant(_name: str) -> Any:
    raise ValueError("NaN/Infinity")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps only the last of two members with one name: a value in the first would
    # never be looked at here, while the upstream may read it. Such a body goes to the codec,
    # which scans every member where it stands.
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member name")
    return members


def _looks_like_document(text: str) -> bool:
    stripped = text.strip()
    return stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]")


def plain_json_texts(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    limits: BodyLimits | None = None,
) -> list[tuple[str, str | None]] | None:
    """(text, field name) of every string in a JSON body that has enough digits to hold a
    value, when each is plain text; None when the body needs the full codec.

    With `limits`, raises TooManyFieldsError, NestingTooDeepError or TooManyDigitsError as
    the codec would.
    """
    if (content_encoding or "").strip().lower() not in _ENCODINGS_WE_SKIP:
        return None
    if len(body) > MAX_PRESCAN_BYTES:
        return None
    parsed = parse_content_type(content_type)
    media_type = parsed.media_type if parsed else None
    if media_type is None or not (media_type in _JSON_TYPES or media_type.endswith("+json")):
        return None
    charset = (parsed.params.get("charset") or "utf-8").lower() if parsed else "utf-8"
    if charset not in ("utf-8", "utf8") or body.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        doc = json.loads(
            body.decode("utf-8"),
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_members,
        )
    except (ValueError, RecursionError):
        return None  # the codec raises the proper error
    texts: list[tuple[str, str | None]] = []
    # (value, field name): a dict member's key; array items take the key the array sits under,
    # as the codec does.
    stack: list[tuple[Any, str | None, int]] = [(doc, None, 0)]
    fields = 0
    digits = 0
    while stack:
        value, key, depth = stack.pop()
        if limits is not None and isinstance(value, dict | list):
            if depth + 1 > limits.max_nesting:
                raise NestingTooDeepError()
            if isinstance(value, dict):
                fields += len(value)
                if fields > limits.max_fields:
                    raise TooManyFieldsError()
        if isinstance(value, str):
            if "=?" in value:
                return None  # maybe encoded words, whose base64 hides digits: the codec decodes
            count = digit_count(value) if len(value) >= MIN_DIGITS else 0
            if count >= MIN_DIGITS:
                if looks_like_html(value) or _looks_like_document(value):
                    return None
                digits += count
                if limits is not None and digits > limits.max_digits:
                    raise TooManyDigitsError()
                texts.append((value, key))
        elif isinstance(value, dict):
            for k, v in value.items():
                if "=?" in k:
                    return None
                if len(k) >= MIN_DIGITS and digit_count(k) >= MIN_DIGITS:
                    if looks_like_html(k) or _looks_like_document(k):
                        return None
                    texts.append((k, key))
                stack.append((v, k, depth + 1))
        elif isinstance(value, list):
            stack.extend((v, key, depth + 1) for v in value)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**11:
            return None  # a JSON number that could be a PAN: the codec makes it a segment
    return texts
