"""Real webhook and e-mail bodies (tests/data/payload_shapes) through the running proxy."""

from __future__ import annotations

import pytest

from tests.bodies.shapes import SHAPE_BUILDERS, decoded_texts, positive_items, value_pattern

# A card in 4-4-4-4, an Amex with double spaces, a Diners, an SSN with spaces, a card split
# over a line break, and one in a multi-line e-mail: detected items (not LUHN_FAIL/DOUBTFUL).
ITEM_IDS = ("stripe-004", "stripe-008", "adyen-013", "pii-codex-013", "stripe-041", "stripe-037")


@pytest.fixture(scope="module")
def items():
    by_id = {i.id: i for i in positive_items()}
    return [by_id[i] for i in ITEM_IDS]


@pytest.mark.parametrize("shape_name", sorted(SHAPE_BUILDERS))
async def test_shape_reaches_upstream_tokenised_with_vendor_bytes_intact(proxy, items, shape_name: str) -> None:
    build = SHAPE_BUILDERS[shape_name]
    for n, item in enumerate(items):
        shape = build(item, items[n - 1])
        resp = await proxy.client.post("/hook", data=shape.body, headers={"Content-Type": shape.content_type})
        assert resp.status == 200, (shape_name, item.id, await resp.text())
        got = proxy.upstream.received[-1].body
        for kept in shape.kept:
            assert kept in got, (shape_name, item.id)
        texts = decoded_texts(got, shape.content_type)
        for value in item.values:
            pattern = value_pattern(value)
            assert not any(pattern.search(t) for t in texts), (shape_name, item.id)
        assert b"tok_v1_" in got or any("tok_v1_" in t for t in texts)
