"""HTML and XML read as their reader shows them (issue 18, items 2 and 3): comments, unknown
inline tags, hidden decoys, `&ensp;` between groups, one group per `<div>` or table cell, XML
character references. A value found across markup is rewritten in its text only: every tag
stays byte for byte where it was. Generated values, never the dev set's."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redactor.detection import Detector
from redactor.redaction.rewrite import Rewriter, finding_value
from redactor.redaction.scanning import ScanRequest, rebuild_body, scan_body
from tests.factories import make_pan

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKEN = "tok_v1_card_abcdefghijklmnopqrst_0000"

# (markup kept as it is, text that belongs to the value's separators) between two groups.
BETWEEN = [
    ("<!-- x -->", ""),
    ("<!--[if mso]><![endif]-->", " "),
    ("<big></big>", " "),
    ("<o:p></o:p>", " "),
    ('<img src="cid:1">', ""),
    ("<span></span>", " "),
    ('<span style="display:none">{decoy}</span>', " "),
    ('<span style="font-size:0">{decoy}</span>', ""),
    ("<span hidden>{decoy}</span>", " "),
    ("", "&ensp;"),
    ("", "&emsp;"),
    ("", "&#8201;"),
    ("</div><div>", ""),
    ("</div>\n  <div>", ""),
    ("</td><td>", ""),
    ("</td>\n<td>", ""),
    ("</li><li>", ""),
    ("<br>", ""),
]


@st.composite
def card_in_html(draw):
    rng = random.Random(draw(st.integers(0, 2**32)))
    pan = make_pan(draw(st.sampled_from(["4", "51", "2221", "6011", "3530"])), 16, rng)
    groups = [pan[i : i + 4] for i in range(0, 16, 4)]
    parts: list[str] = [groups[0]]
    kept: list[str] = []
    for g in groups[1:]:
        markup, text = draw(st.sampled_from(BETWEEN))
        markup = markup.format(decoy="".join(rng.choice("0123456789") for _ in range(4)))
        # Separator text goes before the markup or after it.
        before = draw(st.booleans())
        parts.append((text + markup if before else markup + text) + g)
        kept.append(markup)
    prefix = draw(st.sampled_from(["<div>", "<table><tr><td>", "<ul><li>", "<p>card: "]))
    return pan, prefix, "".join(parts), kept


def _redact(detector: Detector, body: str, content_type: str) -> tuple[bytes, list[str]]:
    request = ScanRequest(body.encode(), content_type, None, "text", 10**7, None)
    scan = scan_body(detector, request)
    values = [
        finding_value(f, text[f.start : f.end])
        for _, text, findings in scan.found
        for f in findings
        if f.lead
    ]
    tokens = {(f.entity, finding_value(f, text[f.start : f.end])): TOKEN
              for _, text, findings in scan.found for f in findings}  # fmt: skip
    return rebuild_body(Rewriter(), scan.parsed, scan.found, tokens), values


@SETTINGS
@given(card=card_in_html())
def test_a_card_across_markup_is_one_token_and_the_markup_stays(detector: Detector, card) -> None:
    pan, prefix, written, kept = card
    body = f"<html><body>{prefix}{written}</p> ok</body></html>"

    out, values = _redact(detector, body, "text/html; charset=utf-8")

    assert values == [pan]
    assert out.decode() == f"<html><body>{prefix}{TOKEN}{''.join(kept)}</p> ok</body></html>"


@SETTINGS
@given(seed=st.integers(0, 2**32), style=st.sampled_from(["&#{};", "&#x{:x};"]))
def test_xml_character_references_are_read(detector: Detector, seed: int, style: str) -> None:
    pan = make_pan("4", 16, random.Random(seed))
    spelled = "".join(style.format(ord(c)) if i % 3 == 0 else c for i, c in enumerate(pan))
    body = f'<?xml version="1.0"?><note><to>Sam</to><body>card {spelled}</body></note>'

    for content_type in ("application/xml", "text/xml", "application/atom+xml"):
        out, values = _redact(detector, body, content_type)
        assert values == [pan]
        assert out.decode() == (
            f'<?xml version="1.0"?><note><to>Sam</to><body>card {TOKEN}</body></note>'
        )


def test_a_hidden_value_is_still_found_on_its_own(detector: Detector) -> None:
    pan = make_pan("4", 16, random.Random(1))
    body = f'<p>hi <span style="display: none">{pan}</span> there</p>'

    out, values = _redact(detector, body, "text/html")

    assert values == [pan]
    assert out.decode() == f'<p>hi <span style="display: none">{TOKEN}</span> there</p>'


def test_numbers_in_cells_of_a_body_that_is_not_text_are_not_joined(detector: Detector) -> None:
    # A NUL byte: a binary file labelled HTML keeps the narrow reading (blocks end segments).
    pan = make_pan("4", 16, random.Random(2))
    cells = "".join(f"<td>{pan[i : i + 4]}</td>" for i in range(0, 16, 4))
    body = f"\x00<table><tr>{cells}</tr></table>"

    out, values = _redact(detector, body, "text/html")

    assert values == []
    assert out == body.encode()
