"""HTML and XML bodies through the running proxy: a card the way a browser or an XML reader
shows it (across comments, unknown tags, hidden decoys, one group per block, character
references) reaches the upstream as a token, and the egress verifier lets it go (issue 18,
items 2 and 3). Generated values."""

from __future__ import annotations

import random
import re

import pytest

from tests.factories import make_pan

PAN = make_pan("5", 16, random.Random(18))
G = [PAN[i : i + 4] for i in range(0, 16, 4)]


def _refs(text: str) -> str:
    return "".join(f"&#{ord(c)};" for c in text)


BODIES = {
    "one group per div": ("text/html", "<div>{}</div><div>{}</div>\n<div>{}</div><div>{}</div>"),
    "table cells": ("text/html", "<table><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"),
    "comments": ("text/html", "<p>card {}<!-- a -->{}<!-- b -->{} {}</p>"),
    "outlook": ("text/html", "<p class=MsoNormal>{} {}<o:p></o:p> <big>{}</big>&ensp;{}</p>"),
    "decoy": ("text/html", '<p>{} {} <span style="display:none">0000</span>{}&emsp;{}</p>'),
    "xml": ("application/xml", '<?xml version="1.0"?><n><b>{} {} {} {}</b></n>'),
    "soap": ("application/soap+xml; charset=utf-8", "<e><b>card {}-{}-{}-{}</b></e>"),
}


@pytest.mark.parametrize("kind", sorted(BODIES))
async def test_a_card_as_the_reader_shows_it_is_redacted(proxy, kind: str) -> None:
    content_type, template = BODIES[kind]
    groups = [_refs(g) if kind.endswith("xml") or kind == "soap" else g for g in G]
    body = template.format(*groups).encode()

    resp = await proxy.client.post("/hook", data=body, headers={"Content-Type": content_type})

    assert resp.status == 200, await resp.text()
    got = proxy.upstream.received[0].body.decode()
    assert re.search(r"tok_v1_\w+", got)
    assert re.search(r"[\W_]{0,3}".join(PAN), got) is None
