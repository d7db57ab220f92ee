"""Builders for the vendor payload shapes in tests/data/payload_shapes, filled from the dev set.

Each builder fills the placeholders the way payload_shapes/README.md says and returns a
`Shape`: the body, its content type, and what must survive the rewrite byte for byte.
"""

from __future__ import annotations

import base64
import email
import email.header
import email.parser
import html
import json
import quopri
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from urllib.parse import parse_qsl, quote_plus

from tests.factories import DEV_SET
from tests.factories import PAYLOAD_SHAPES as SHAPES

TOKEN = "tok_v1_card_abcdefghijklmnopqrst_4242"
BOUNDARY = "xYzZY-sendgrid-7d3e"
FROM_NAME = "Ada Customer"
FROM_ADDRESS = "ada@example.com"
# A binary attachment whose bytes hold a card-shaped run: it must pass through untouched.
PDF_BYTES = b"%PDF-1.4\n\x00\xff\xfe 4111 1111 1111 1111 \x80\x81\n%%EOF\n"


@dataclass(frozen=True)
class Item:
    """One labelled dev-set text."""

    id: str
    text: str
    values: tuple[str, ...]


@dataclass
class Shape:
    """A filled payload: body, content type, and bytes that must stay identical."""

    body: bytes
    content_type: str
    kept: list[bytes] = field(default_factory=list)  # byte strings that must survive as-is


def positive_items() -> list[Item]:
    """The dev-set items with at least one expected value."""
    items = []
    for line in DEV_SET.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["expected"]:
            values = tuple(e["value"] for e in row["expected"])
            items.append(Item(row["id"], row["text"], values))
    return items


def value_pattern(value: str) -> re.Pattern[str]:
    """The value's digits with any run of whitespace, `-` or `.` allowed between them.

    A QP soft break, an HTML `<br>` read as a newline, or a subject folded onto one line can
    change the separators; the digits stay in order.
    """
    digits = [c for c in value if c.isalnum()]
    return re.compile(r"(?<![0-9])" + r"[\s.\-]*".join(map(re.escape, digits)) + r"(?![0-9])")


def html_of(text: str) -> str:
    """The README's HTML form: escaped, newlines as <br>."""
    return html.escape(text).replace("\n", "<br>")


def one_line(text: str) -> str:
    """A subject line: header fields cannot hold newlines."""
    return " ".join(text.split())


def subject_rfc2047(subject: str) -> str:
    """Plain when ASCII, else an RFC 2047 encoded word (README rule)."""
    if subject.isascii():
        return subject
    return email.header.Header(subject, "utf-8").encode(linesep="\r\n")


def render_eml(item: Item) -> bytes:
    """The .eml template rendered with the README's recipe (CRLF, QP text, base64 HTML)."""
    template = (SHAPES / "rfc5322_multipart_qp_base64.eml").read_bytes().decode()
    qp = quopri.encodestring(item.text.replace("\n", "\r\n").encode()).decode().rstrip()
    html_body = ("<p>" + html_of(item.text) + "</p>").encode()
    b64 = base64.encodebytes(html_body).decode().replace("\n", "\r\n").rstrip()
    return (
        template.replace("{{MESSAGE_TEXT_QP}}", qp)
        .replace("{{MESSAGE_HTML_BASE64}}", b64)
        .replace("{{SUBJECT_RFC2047}}", subject_rfc2047(one_line(item.text)))
        .replace("{{FROM_NAME}}", FROM_NAME)
        .replace("{{FROM_ADDRESS}}", FROM_ADDRESS)
        .encode()
    )


def _json_shape(name: str, item: Item, previous: Item) -> Shape:
    template = (SHAPES / name).read_text(encoding="utf-8")

    def esc(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)[1:-1]

    filled = (
        template.replace("{{MESSAGE_TEXT}}", esc(item.text))
        .replace("{{MESSAGE_HTML}}", esc(html_of(item.text)))
        .replace("{{PREVIOUS_MESSAGE_HTML}}", esc(html_of(previous.text)))
        .replace("{{TICKET_SUBJECT}}", esc(one_line(item.text)))
        .replace("{{TICKET_DESCRIPTION}}", esc(item.text))
        .replace("{{AUTHOR_NAME}}", FROM_NAME)
        .replace("{{FROM_NAME}}", FROM_NAME)
        .replace("{{FROM_ADDRESS}}", FROM_ADDRESS)
    )
    kept = [line.encode() for line in template.splitlines() if "{{" not in line]
    return Shape(filled.encode(), "application/json", kept)


def _field_value(example: str, item: Item, previous: Item, *, in_json: bool) -> str:
    def esc(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)[1:-1] if in_json else text

    return (
        example.replace("{{MESSAGE_TEXT}}", esc(item.text))
        .replace("{{MESSAGE_HTML}}", esc(html_of(item.text)))
        .replace("{{QUOTED_PREVIOUS_MESSAGE_HTML}}", esc(html_of(previous.text)))
        .replace("{{QUOTED_PREVIOUS_MESSAGE}}", esc(previous.text))
        .replace("{{SUBJECT}}", esc(one_line(item.text)))
        .replace("{{SIGNATURE_BLOCK}}", "Ada Customer\nAcme Corp")
        .replace("{{FROM_NAME}}", FROM_NAME)
        .replace("{{FROM_ADDRESS}}", FROM_ADDRESS)
    )


def form_fields(
    name: str, item: Item, previous: Item, *, raw_mode: bool
) -> list[tuple[str, str, bool]]:
    """(field name, value, carries message text) for a form-field shape."""
    spec = json.loads((SHAPES / name).read_text(encoding="utf-8"))
    parsed_only = {"headers", "text", "html", "attachments", "attachment-info", "content-ids"}
    fields = []
    for entry in spec["fields"]:
        field_name = entry["name"]
        if field_name.startswith("attachment") and "mailgun" in name:
            continue  # file parts are added by the caller
        if field_name == "email" and not raw_mode:
            continue
        if raw_mode and field_name in parsed_only:
            continue
        if field_name == "email":
            value = render_eml(item).decode()
        else:
            in_json = field_name in ("message-headers", "envelope")
            value = _field_value(entry["example"], item, previous, in_json=in_json)
        # `headers` is flagged as not carrying message text, yet its Subject line does.
        carries = entry["carries_message_text"] or any(
            p in entry["example"] for p in ("{{SUBJECT}}", "{{MESSAGE", "{{QUOTED")
        )
        fields.append((field_name, value, carries))
    return fields


def multipart(fields: list[tuple[str, str, bool]], files: list[tuple[str, str, bytes]]) -> Shape:
    """A multipart/form-data body the way SendGrid/Mailgun send it (CRLF, quoted names)."""
    chunks: list[bytes] = []
    kept: list[bytes] = []
    for field_name, value, carries_text in fields:
        part = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field_name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
        chunks.append(part)
        if not carries_text:
            kept.append(part)
    for field_name, filename, data in files:
        part = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field_name}"; '
            f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
        chunks.append(part)
        kept.append(part)
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return Shape(b"".join(chunks), f"multipart/form-data; boundary={BOUNDARY}", kept)


def urlencoded(fields: list[tuple[str, str, bool]]) -> Shape:
    """An urlencoded body the way Mailgun sends it (`+` for spaces)."""
    pairs = [f"{quote_plus(n)}={quote_plus(v)}".encode() for n, v, _c in fields]
    kept = [p for p, (_n, _v, carries) in zip(pairs, fields, strict=True) if not carries]
    return Shape(b"&".join(pairs), "application/x-www-form-urlencoded", kept)


def _eml_shape(item: Item, _previous: Item) -> Shape:
    raw = render_eml(item)
    kept = [
        line
        for line in raw.split(b"\r\n")
        if line.startswith((b"Message-ID", b"Date", b"Content-", b"--"))
    ]
    return Shape(raw, "message/rfc822", kept)


def _sendgrid(raw_mode: bool) -> Callable[[Item, Item], Shape]:
    def build(item: Item, previous: Item) -> Shape:
        fields = form_fields(
            "sendgrid_inbound_parse_fields.json", item, previous, raw_mode=raw_mode
        )
        files = [] if raw_mode else [("attachment1", "receipt.pdf", PDF_BYTES)]
        return multipart(fields, files)

    return build


def _mailgun(variant: str) -> Callable[[Item, Item], Shape]:
    def build(item: Item, previous: Item) -> Shape:
        fields = form_fields("mailgun_inbound_route_fields.json", item, previous, raw_mode=False)
        if variant == "urlencoded":
            return urlencoded(fields)
        if variant == "mime":
            keep = {"recipient", "sender", "from", "subject", "timestamp", "token", "signature"}
            fields = [f for f in fields if f[0] in keep]
            fields.append(("body-mime", render_eml(item).decode(), True))
            return urlencoded(fields)
        fields.append(("attachment-count", "1", False))
        return multipart(fields, [("attachment-1", "receipt.pdf", PDF_BYTES)])

    return build


SHAPE_BUILDERS: dict[str, Callable[[Item, Item], Shape]] = {
    "zendesk_webhook_ticket_comment_added": lambda i, p: _json_shape(
        "zendesk_webhook_ticket_comment_added.json", i, p
    ),
    "zendesk_ticket_comment_object": lambda i, p: _json_shape(
        "zendesk_ticket_comment_object.json", i, p
    ),
    "intercom_conversation_user_created": lambda i, p: _json_shape(
        "intercom_webhook_conversation_user_created.json", i, p
    ),
    "intercom_conversation_user_replied": lambda i, p: _json_shape(
        "intercom_webhook_conversation_user_replied.json", i, p
    ),
    "slack_message": lambda i, p: _json_shape("slack_events_api_message.json", i, p),
    "slack_message_with_blocks": lambda i, p: _json_shape(
        "slack_events_api_message_with_blocks.json", i, p
    ),
    "rfc5322_eml": _eml_shape,
    "sendgrid_parsed": _sendgrid(raw_mode=False),
    "sendgrid_raw_mime": _sendgrid(raw_mode=True),
    "mailgun_urlencoded": _mailgun("urlencoded"),
    "mailgun_multipart_with_attachment": _mailgun("multipart"),
    "mailgun_mime_route": _mailgun("mime"),
}


# --- independent decoding of an output body (stdlib only), for leak checks ---------------------


def _with_markup_variants(text: str) -> Iterator[str]:
    yield text
    if "<" in text or "&" in text:
        yield html.unescape(re.sub(r"<[^>]*>", " ", text))


def _email_texts(raw: bytes) -> Iterator[str]:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert not [d for d in message.defects if "Boundary" in type(d).__name__]
    for part in message.walk():
        for _name, value in part.items():
            yield str(value)
        if part.is_multipart() or part.get_content_maintype() == "message":
            continue
        if part.get_content_maintype() == "text":
            yield from _with_markup_variants(part.get_content())


def _field_texts(name: str, value: bytes) -> Iterator[str]:
    if name in ("email", "body-mime"):
        yield from _email_texts(value)
        return
    text = value.decode("utf-8")
    yield from _with_markup_variants(text)
    if name == "headers":
        headers = email.parser.BytesHeaderParser(policy=policy.default).parsebytes(value)
        yield from (str(v) for _n, v in headers.items())


def decoded_texts(body: bytes, content_type: str) -> list[str]:
    """Every text an upstream would see in `body`, decoded by the standard library.

    Raises (AssertionError/ValueError) when the body does not parse as its content type.
    """
    media_type = content_type.split(";")[0].strip()
    if media_type == "application/json":
        texts: list[str] = []

        def walk(node: object) -> None:
            if isinstance(node, dict):
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
            elif isinstance(node, str):
                texts.extend(_with_markup_variants(node))
            else:
                texts.append(str(node))

        walk(json.loads(body))
        return texts
    if media_type == "message/rfc822":
        return list(_email_texts(body))
    if media_type == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        return [t for n, v in pairs for t in _field_texts(n, v.encode("utf-8"))]
    if media_type == "multipart/form-data":
        message = email.message_from_bytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body, policy=policy.compat32
        )
        assert message.is_multipart()
        assert not message.defects
        result = []
        for part in message.get_payload():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                continue
            result.extend(_field_texts(name, part.get_payload(decode=True)))
        return result
    raise AssertionError("unexpected content type")


def multipart_field(body: bytes, content_type: str, name: str) -> bytes:
    """The raw value of one multipart/form-data field (stdlib parser)."""
    message = email.message_from_bytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body, policy=policy.compat32
    )
    for part in message.get_payload():
        if part.get_param("name", header="content-disposition") == name:
            return part.get_payload(decode=True)
    raise KeyError(name)
