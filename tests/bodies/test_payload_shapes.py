"""End to end on the vendors' real payload shapes filled with labelled dev-set texts.

For every shape and every positive item: parse, find each expected value in a segment,
replace it with a token, rebuild, and check that the output still parses as its content
type, holds no expected value (raw or decoded), holds the token, and keeps the vendor's
other bytes.
"""

from __future__ import annotations

import re

import pytest

from redactor.bodies import Edit, parse_body
from tests.bodies.shapes import (
    PDF_BYTES,
    SHAPE_BUILDERS,
    SHAPES,
    TOKEN,
    decoded_texts,
    multipart_field,
    positive_items,
    value_pattern,
)

ITEMS = positive_items()
# Shapes that also quote an earlier message of the conversation (another dev-set item).
WITH_PREVIOUS_MESSAGE = frozenset(
    {
        "intercom_conversation_user_replied",
        "mailgun_urlencoded",
        "mailgun_multipart_with_attachment",
    }
)
CASES = [
    pytest.param(shape, item, ITEMS[(n + 1) % len(ITEMS)], id=f"{shape}-{item.id}")
    for shape in SHAPE_BUILDERS
    for n, item in enumerate(ITEMS)
]


def test_every_payload_shape_file_has_a_builder() -> None:
    files = sorted(p.name for p in SHAPES.iterdir() if p.suffix in (".json", ".eml"))
    covered = {
        "zendesk_webhook_ticket_comment_added.json",
        "zendesk_ticket_comment_object.json",
        "intercom_webhook_conversation_user_created.json",
        "intercom_webhook_conversation_user_replied.json",
        "slack_events_api_message.json",
        "slack_events_api_message_with_blocks.json",
        "rfc5322_multipart_qp_base64.eml",
        "sendgrid_inbound_parse_fields.json",
        "mailgun_inbound_route_fields.json",
    }
    assert set(files) == covered


def test_dev_set_has_positive_items() -> None:
    assert len(ITEMS) > 100


@pytest.mark.parametrize(("shape_name", "item", "previous"), CASES)
def test_payload_shape_redacts_expected_values_and_keeps_vendor_bytes(
    shape_name, item, previous
) -> None:
    shape = SHAPE_BUILDERS[shape_name](item, previous)
    parsed = parse_body(shape.body, shape.content_type)
    assert parsed.rebuild({}) == shape.body

    values = set(item.values)
    if shape_name in WITH_PREVIOUS_MESSAGE:
        values |= set(previous.values)
    patterns = [value_pattern(v) for v in values]
    for value, pattern in zip(values, patterns, strict=True):
        assert any(pattern.search(s.text) for s in parsed.segments), value

    edits: dict[int, list[Edit]] = {}
    for segment in parsed.segments:
        spans = sorted({m.span() for p in patterns for m in p.finditer(segment.text)})
        chosen: list[Edit] = []
        for start, end in spans:
            if chosen and start < chosen[-1].end:
                continue
            chosen.append(Edit(start, end, TOKEN))
        if chosen:
            edits[segment.index] = chosen
    output = parsed.rebuild(edits)

    texts = decoded_texts(output, shape.content_type)  # also proves the output parses
    as_text = output.decode("utf-8", "surrogateescape")
    for value, pattern in zip(values, patterns, strict=True):
        # Digit boundaries: an SSN such as 876543210 sits inside Zendesk's id 9876543210.
        assert re.search(rf"(?<![0-9]){re.escape(value)}(?![0-9])", as_text) is None, value
        assert not any(pattern.search(t) for t in texts), value
    assert TOKEN in as_text or any(TOKEN in t for t in texts)
    for kept in shape.kept:
        assert kept in output
    if b"receipt.pdf" in shape.body:
        assert PDF_BYTES in output
    if "multipart" in shape.content_type and "mailgun" in shape_name:
        for name in ("timestamp", "token", "signature"):
            assert multipart_field(output, shape.content_type, name) == multipart_field(
                shape.body, shape.content_type, name
            )
