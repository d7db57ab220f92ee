"""What the proxy would redact is what `redactor redact` redacts: each vendor payload shape of
tests/data (filled with generated card numbers and SSNs) goes through the proxy's pipeline and,
stored as a file, through `redact_files`, against the same vault. The two outputs are the same
bytes: same values found, same tokens, same bytes around them."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from redactor.detection import DetectionOptions, Detector
from redactor.ingress.pipeline import Pipeline
from redactor.redaction.rewrite import Rewriter
from redactor.runtime.entities import VaultAdapter
from tests.backfill.conftest import TENANT, Store
from tests.bodies.shapes import SHAPE_BUILDERS, Item
from tests.factories import group, make_pan, make_ssn
from vault import find_tokens
from vault.startup import open_vault

# The shapes a stored export holds as a document or a message (form posts are not files).
FILE_SHAPES = {
    "zendesk_webhook_ticket_comment_added": "json",
    "zendesk_ticket_comment_object": "json",
    "intercom_conversation_user_created": "json",
    "intercom_conversation_user_replied": "json",
    "slack_message": "json",
    "slack_message_with_blocks": "json",
    "rfc5322_eml": "eml",
}


def _items(seed: int) -> list[Item]:
    rng = random.Random(seed)
    visa, amex = make_pan("4", 16, rng), make_pan("37", 15, rng)
    ssn = make_ssn(rng)
    card_4 = group(visa, (4, 4, 4, 4), " ")
    card_amex = group(amex, (4, 6, 5), "-")
    ssn_text = f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}"
    card_split = group(make_pan("5", 16, rng), (4, 4, 4, 4), [" ", "\n", " "])
    return [
        Item("g1", f"Hi, my card is {card_4}, exp 04/29. Thanks!", (card_4,)),
        Item("g2", f"Amex {card_amex} & SSN {ssn_text} — é <b>", (card_amex, ssn_text)),
        Item("g3", f"card on two lines:\n{card_split}\nregards", (card_split,)),
        Item("g4", "order 5521, nothing else", ()),
    ]


def _proxy(store: Store, bodies: list[tuple[bytes, str]]) -> list[bytes]:
    async def run() -> list[bytes]:
        vault = await open_vault(store.config, create=False)
        try:
            pipeline = Pipeline(Detector(DetectionOptions()), Rewriter(), VaultAdapter(vault), 5.0)
            out = []
            for body, content_type in bodies:
                redaction = await pipeline.redact(
                    body, content_type=content_type, content_encoding=None, tenant=TENANT
                )
                out.append(bytes(redaction.body))
            return out
        finally:
            await vault.close()

    return asyncio.run(run())


@pytest.mark.parametrize("shape_name", sorted(FILE_SHAPES))
def test_a_stored_payload_is_redacted_as_the_proxy_redacts_it(
    store: Store, shape_name: str
) -> None:
    fmt = FILE_SHAPES[shape_name]
    items = _items(sum(map(ord, shape_name)))
    shapes = [SHAPE_BUILDERS[shape_name](item, items[n - 1]) for n, item in enumerate(items)]
    from_proxy = _proxy(store, [(s.body, s.content_type) for s in shapes])
    assert any(find_tokens(body.decode("utf-8", "replace")) for body in from_proxy)
    for n, shape in enumerate(shapes):
        source = store.root / f"stored-{n}.{fmt}"
        source.write_bytes(shape.body)
        out = store.root / f"clean-{n}.{fmt}"
        result = store.redact([source], output=str(out), fmt=fmt)
        assert result.code == 0, result.stderr
        assert out.read_bytes() == from_proxy[n], (shape_name, items[n].id)


def test_an_mbox_of_those_messages_is_redacted_as_the_proxy_redacts_each(store: Store) -> None:
    items = _items(7)
    shapes = [SHAPE_BUILDERS["rfc5322_eml"](item, items[n - 1]) for n, item in enumerate(items)]
    from_proxy = _proxy(store, [(s.body, s.content_type) for s in shapes])
    sep = b"From ada@example.com Mon Dec  7 07:00:00 2026\n"
    source = store.root / "box.mbox"
    source.write_bytes(b"".join(sep + s.body for s in shapes))
    out = store.root / "clean.mbox"
    assert store.redact([source], output=str(out)).code == 0
    assert out.read_bytes() == b"".join(sep + body for body in from_proxy)


def test_a_jsonl_export_of_those_documents_is_redacted_as_the_proxy_redacts_each(
    store: Store, tmp_path: Path
) -> None:
    import json

    items = _items(11)
    bodies = [
        json.dumps(json.loads(SHAPE_BUILDERS[name](item, items[n - 1]).body)).encode()
        for name in ("zendesk_ticket_comment_object", "slack_message_with_blocks")
        for n, item in enumerate(items)
    ]
    from_proxy = _proxy(store, [(b, "application/json") for b in bodies])
    source = tmp_path / "export.jsonl"
    source.write_bytes(b"".join(b + b"\n" for b in bodies))
    out = tmp_path / "clean.jsonl"
    assert store.redact([source], output=str(out)).code == 0
    assert out.read_bytes() == b"".join(b + b"\n" for b in from_proxy)
