"""HTML codec: character references, inline tags, attributes, raw text."""

from __future__ import annotations

import pytest

from redactor.bodies import Edit, parse_body
from tests.bodies.shapes import value_pattern

TOKEN = "tok_v1_card_abcdefghijklmnopqrst_4242"


def _parse(raw: str):
    return parse_body(raw.encode(), "text/html; charset=utf-8")


CARD = value_pattern("4111 1111 1111 1111")


def _redact(raw: str) -> str:
    parsed = _parse(raw)
    edits = {}
    for segment in parsed.segments:
        match = CARD.search(segment.text)
        if match:
            edits[segment.index] = [Edit(match.start(), match.end(), TOKEN)]
    assert edits, "card not found in any segment"
    return parsed.rebuild(edits).decode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>4111&#32;1111&#x20;1111&nbsp;1111</p>", f"<p>{TOKEN}</p>"),
        ("<p>card: 4111 1111<br>1111 1111 ok</p>", f"<p>card: {TOKEN}<br> ok</p>"),
        ("<p>card: <b>4111 1111</b> 1111 1111 ok</p>", f"<p>card: <b>{TOKEN}</b> ok</p>"),
        (
            "<div>a &amp; b 4111 1111 1111 1111 &lt;x&gt;</div>",
            f"<div>a &amp; b {TOKEN} &lt;x&gt;</div>",
        ),
        ('<a href="x" title="4111 1111 1111 1111">y</a>', f'<a href="x" title="{TOKEN}">y</a>'),
        ("<a title='4111&#32;1111 1111 1111'>y</a>", f"<a title='{TOKEN}'>y</a>"),
        ("<a title=4111-1111-1111-1111>y</a>", f"<a title={TOKEN}>y</a>"),
        ("<!-- 4111 1111 1111 1111 -->", f"<!-- {TOKEN} -->"),
        ("<script>var c='4111 1111 1111 1111';</script>", f"<script>var c='{TOKEN}';</script>"),
        ("<title>4111 1111 1111 1111</title>", f"<title>{TOKEN}</title>"),
        ("a < b 4111 1111 1111 1111", f"a < b {TOKEN}"),
        ("<p unterminated 4111 1111 1111 1111", f"<p unterminated {TOKEN}"),
    ],
)
def test_html_body_maps_edits_back_to_raw_markup(raw, expected) -> None:
    parsed = _parse(raw)
    assert parsed.rebuild({}) == raw.encode()
    assert _redact(raw) == expected


def test_html_body_br_and_blocks_read_as_one_newline_and_inline_tags_as_nothing() -> None:
    parsed = _parse("<p>4111 1111<br>1111 <span>1111</span></p>\n  <div>next</div>")
    assert [s.text for s in parsed.segments] == ["4111 1111\n1111 1111\nnext"]


def test_html_body_blocks_are_line_breaks_of_one_run() -> None:
    parsed = _parse("<p>a</p><p>b</p><table><tr><td>c</td> <td>d</td></tr></table>")
    assert [s.text for s in parsed.segments] == ["a\nb\nc\nd"]


def test_html_body_that_is_not_all_text_keeps_the_narrow_reading() -> None:
    # A stray byte (a binary file labelled HTML): blocks end segments, nothing is joined.
    raw = b"<p>a\xff</p><p>b</p><x>c</x>d"
    parsed = parse_body(raw, "text/html")
    assert [s.text for s in parsed.segments] == ["a\udcff", "b", "c", "d"]
    assert parsed.rebuild({}) == raw


def test_html_body_attribute_segments_name_the_attribute() -> None:
    parsed = _parse('<input name="card" value="4111 1111 1111 1111">')
    assert [(s.field_name, s.kind, s.text) for s in parsed.segments] == [
        ("name", "html_attr", "card"),
        ("value", "html_attr", "4111 1111 1111 1111"),
    ]


def test_html_body_escapes_markup_in_replacements() -> None:
    parsed = _parse("<p>x 4111 y</p>")
    out = parsed.rebuild({0: [Edit(2, 6, "<b>&</b>")]})
    assert out == b"<p>x &lt;b&gt;&amp;&lt;/b&gt; y</p>"


def test_html_body_edit_inside_a_multi_character_reference_keeps_its_other_characters() -> None:
    # &NotEqualTilde; decodes to two characters.
    parsed = _parse("<p>a&NotEqualTilde;b</p>")
    text = parsed.segments[0].text
    assert len(text) == 4
    out = parsed.rebuild({0: [Edit(1, 2, "X")]}).decode()
    assert out == "<p>aX\u0338b</p>"


def test_html_body_text_edit_over_a_tag_keeps_the_tag_and_its_edited_attribute() -> None:
    parsed = _parse('<p>4111 <a title="4111">1111</a></p>')
    by_kind = {s.kind: s for s in parsed.segments}
    out = parsed.rebuild(
        {
            by_kind["html_text"].index: [Edit(0, 9, "T")],
            by_kind["html_attr"].index: [Edit(0, 4, "A")],
        }
    )
    assert out == b'<p>T<a title="A"></a></p>'


def test_html_body_undeclared_charset_round_trips_stray_bytes() -> None:
    raw = b"<p>caf\xe9 4111</p>"
    parsed = parse_body(raw, "text/html")
    assert parsed.rebuild({}) == raw
    assert parsed.rebuild({0: [Edit(5, 9, "T")]}) == b"<p>caf\xe9 T</p>"
