"""The JSON fast path never says "nothing here" when the full codec would find something."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from redactor.bodies import parse_body
from redactor.bodies.json_prescan import plain_json_texts
from redactor.bodies.limits import BodyLimits
from redactor.detection import default_detector
from redactor.errors import BodyLimitError, NestingTooDeepError, TooManyFieldsError

VALUES = [
    "4111 1111 1111 1111",
    "4111&#32;1111&#32;1111&#32;1111",
    "<p>card 4111 1111 1111 1111</p>",
    "<b>4111</b> 1111 1111 1111",
    "536-90-4399",
    "536904399",
    "order 1234567",
    "2024-02-11 10:30",
    "４１１１ １１１１ １１１１ １１１１",
    "๔๑๑๑ ๑๑๑๑ ๑๑๑๑ ๑๑๑๑",
    "4111\n1111\r\n1111\t1111",
    "536\n90\n4399",
    'card "4111/1111/1111/1111"',
    "\\u0034111 1111 1111 1111",
    "4111\u200b1111\u200b1111\u200b1111",
    "Sent on 2026-11-30 at 10:30",
    "hello",
]
KEYS = ["text", "ssn", "order_id", "tracking_number", "body", "id"]

leaves = st.one_of(
    st.sampled_from(VALUES),
    st.text(max_size=30),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([4111111111111111, 536904399, True, None, 1.5]),
)
documents = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS), children, max_size=4)
    ),
    max_leaves=12,
)


def _full_path_finds(body: bytes) -> bool:
    detector = default_detector()
    parsed = parse_body(body, "application/json")
    return any(detector.find(s.text, field_name=s.field_name) for s in parsed.segments)


@settings(max_examples=400, deadline=None)
@given(documents, st.booleans())
def test_fast_path_agrees_with_the_codec_whenever_it_answers(doc, ascii_only: bool) -> None:
    _assert_fast_path_agrees(json.dumps(doc, ensure_ascii=ascii_only).encode())


def _assert_fast_path_agrees(body: bytes) -> None:
    plain = plain_json_texts(body, "application/json", None)
    if plain is None:
        return  # the codec decides
    detector = default_detector()
    fast_finds = any(detector.find(text, field_name=key) for text, key in plain)
    assert fast_finds == _full_path_finds(body)


def test_fast_path_reads_html_and_long_integers_as_codec_segments_and_steps_aside_otherwise() -> (
    None
):
    # HTML and 9-19 digit integers are the codec's own segments (issue 24: every Zendesk
    # ticket has 12-digit ids and an html_body, and all went to the codec).
    html = json.dumps({"body": "<p>4111&#32;1111&#32;1111&#32;1111</p>"}).encode()
    assert plain_json_texts(html, "application/json", None) == [("4111 1111 1111 1111", "body")]
    link = json.dumps({"body": '<a href="https://x.test/?c=4111 1111 1111 1111">pay</a>'})
    assert plain_json_texts(link.encode(), "application/json", None) == [
        ("https://x.test/?c=4111 1111 1111 1111", "href")
    ]
    clean_html = json.dumps({"body": "<p>Order 5521 of 2024-03-12 at 10:30</p>"}).encode()
    assert plain_json_texts(clean_html, "application/json", None) == []
    # Cells joined with their tags read as nothing look like base64 (`ItemQtyPriceMugs`):
    # HtmlView reads the string here, as the codec would, and finds nothing to hand on.
    table = "<table><tr><th>Item</th><th>Qty</th><th>Price</th></tr><tr><td>Mugs</td></tr>"
    body = json.dumps({"html_body": table + "</table>"}).encode()
    assert plain_json_texts(body, "application/json", None) == []
    number = json.dumps({"pan": 4111111111111111, "n": -536904399}).encode()
    assert plain_json_texts(number, "application/json", None) == [
        ("4111111111111111", "pan"),
        ("-536904399", "n"),
    ]
    assert plain_json_texts(b'{"big": 12345678901234567890}', "application/json", None) == []
    assert plain_json_texts(b'{"f": 4111111111111111.0}', "application/json", None) is None
    plain = json.dumps({"text": "card 4111 1111 1111 1111"}).encode()
    assert plain_json_texts(plain, "application/json", "gzip") is None
    assert plain_json_texts(plain, "application/json; charset=utf-16", None) is None
    assert plain_json_texts(plain, "text/plain", None) is None
    assert plain_json_texts(b'{"a": ', "application/json", None) is None
    assert plain_json_texts(plain, "application/json", None) == [
        ("card 4111 1111 1111 1111", "text")
    ]
    assert plain_json_texts(b'{"id": "123", "n": 5}', "application/vnd.api+json", None) == []


def _findings(body: bytes, min_digits: int) -> list[tuple[str, str]]:
    detector = default_detector()
    parsed = parse_body(body, "application/json", min_segment_digits=min_digits)
    return sorted(
        (f.entity, s.text[f.start : f.end])
        for s in parsed.segments
        for f in detector.find(s.text, field_name=s.field_name)
    )


@settings(max_examples=300, deadline=None)
@given(documents)
def test_leaving_out_short_strings_loses_no_finding(doc) -> None:
    body = json.dumps(doc, ensure_ascii=False).encode()
    assert _findings(body, 9) == _findings(body, 0)


def _render(node: object, spacing: str) -> str:
    # JSON text from (key, value) pair lists, so one object can hold one name twice.
    if isinstance(node, tuple):
        members = (f"{json.dumps(k)}:{spacing}{_render(v, spacing)}" for k, v in node)
        return "{" + f",{spacing}".join(members) + "}"
    if isinstance(node, list):
        return "[" + f",{spacing}".join(_render(v, spacing) for v in node) + "]"
    return json.dumps(node)


raw_documents = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(st.tuples(st.sampled_from(["a", "note", "a:b", "id"]), children), max_size=4).map(
            tuple
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(raw_documents, st.sampled_from(["", " ", "\n  "]))
def test_a_member_named_twice_never_hides_a_value_from_the_fast_path(doc, spacing: str) -> None:
    _assert_fast_path_agrees(_render(doc, spacing).encode())


def test_the_first_of_two_members_with_one_name_is_read_too() -> None:
    for body in (
        b'{"note": "card 4111 1111 1111 1111", "note": "hi"}',
        b'{"note": "card 4111\\n1111 1111 1111", "note": "hi"}',
        b'{"n\\u003a": "ssn 536-90-4399", "n\\u003a": "x", "f": 1e15}',
        b'{"a": {"note": "536-90-4399"}, "a": 1}',
    ):
        plain = plain_json_texts(body, "application/json", None)
        assert plain is None or any(default_detector().find(t, field_name=k) for t, k in plain)


def test_plain_ascii_without_a_long_digit_stretch_is_clean_at_a_glance() -> None:
    webhook = json.dumps(
        {"id": "01JRT2GZ", "created_at": "2099-07-04T05:27:58Z", "body": "order 1234567 late"}
    ).encode()
    assert plain_json_texts(webhook, "application/json", None) == []
    # The same stretch spelled with an escape, an entity or a tag is read the long way.
    for text in ("4111\\n1111 1111 1111", "4111&#x20;1111 1111 1111", "<b>4111</b>1111 1111 1111"):
        body = b'{"body": "' + text.encode() + b'"}'
        plain = plain_json_texts(body, "application/json", None)
        assert plain is None or plain != []


def _outcome(fn) -> str:
    try:
        fn()
    except BodyLimitError as exc:
        return type(exc).__name__
    return "ok"


@settings(max_examples=300, deadline=None)
@given(documents, st.integers(1, 6), st.integers(1, 4), st.sampled_from([9, 20, 40, 10**6]))
# Found by this test: escapes in a short string's literal ("\u001f") made it a segment the
# codec counted digits of, while the fast path counted only strings with 9 digits.
@example(
    ["4111 1111 1111 1111", "4111&#32;1111&#32;1111&#32;1111", "00\x1f\x19", "0\x1f\x1f\x1f"],
    1,
    1,
    40,
)
def test_the_fast_path_refuses_a_body_exactly_when_the_codec_does(
    doc, max_fields: int, max_nesting: int, max_digits: int
) -> None:
    limits = BodyLimits(max_fields=max_fields, max_nesting=max_nesting, max_digits=max_digits)
    body = json.dumps(doc).encode()
    fast: list = []
    fast_outcome = _outcome(
        lambda: fast.append(plain_json_texts(body, "application/json", None, limits))
    )
    if fast_outcome == "ok" and fast[0] is None:
        return  # the codec decides
    codec_outcome = _outcome(
        lambda: parse_body(body, "application/json", limits=limits, min_segment_digits=9)
    )
    # Both refuse (fail closed); a body past two limits may be named by either one.
    assert (fast_outcome == "ok") == (codec_outcome == "ok")


def test_limits_hold_on_documents_too_large_for_the_small_walk() -> None:
    limits = BodyLimits(max_fields=2000, max_nesting=8)
    wide = {f"k{i}": "order 123" for i in range(1000)}
    assert plain_json_texts(json.dumps(wide).encode(), "application/json", None, limits) == []
    deep_inside = {**wide, "x": [[[[[[[[["too deep"]]]]]]]]]}
    with pytest.raises(NestingTooDeepError):
        plain_json_texts(json.dumps(deep_inside).encode(), "application/json", None, limits)
    too_many = {f"k{i}": i for i in range(3000)}
    with pytest.raises(TooManyFieldsError):
        plain_json_texts(json.dumps(too_many).encode(), "application/json", None, limits)


# --- the fast path's rewrite is the codec's, byte for byte ------------------------------------

HTML_VALUES = [
    "<p>card 4111 1111 1111 1111</p>",
    "<p>Order 5521 of 2024-03-12, call 555-123-4567</p>",
    '<div class="zd-comment"><p>ssn <b>536-90</b>-4399 thanks</p></div>',
    "<p>4111&nbsp;1111&nbsp;1111&nbsp;1111</p>",
    '<p><a href="https://pay.test/?c=5555555555554444">pay</a> 2024-01-01</p>',
    "<p>a < b 1234 5678 9</p><!-- 536-90-4399 -->",
    "<p>4111<br>1111<br>1111<br>1111</p>",
    "<p>order&#32;123456789&#32;shipped</p>",
    # Base64 of text in an attribute and in a run split by tags (the fast path reads them
    # with HtmlView's decoding views), and a table whose joined cells look like base64.
    '<p>Hi <span title="Y2FyZCA0MTExIDExMTEgMTExMSAxMTEx">there</span> 2024-01-01</p>',
    "<div><b>Y2FyZCA0MTEx</b>IDExMTEgMTExMSAxMTEx</div>",
    "<table><tr><th>Item</th><th>Qty</th><th>Price</th></tr>\n<tr><td>Mugs</td></tr></table>",
]
INTEGERS = [4111111111111111, -4111111111111111, 360123456789, 536904399, 123456789012345678]
codec_leaves = st.one_of(
    st.sampled_from(VALUES + HTML_VALUES),
    st.text(max_size=30),
    st.sampled_from(INTEGERS),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([True, None, 1.5]),
)
codec_documents = st.recursive(
    codec_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS), children, max_size=4)
    ),
    max_leaves=12,
)


class _AnyToken(dict):
    """Every finding's token: its entity and digits spelled in letters (a Mapping)."""

    def __missing__(self, key: tuple[str, str]) -> str:
        entity, digits = key
        return f"tok_{entity.lower()}_" + "".join(chr(ord("a") + int(d)) for d in digits)


def _rewritten_by_codec(body: bytes) -> bytes:
    from redactor.redaction.rewrite import Rewriter
    from redactor.redaction.scanning import rebuild_body

    detector = default_detector()
    parsed = parse_body(body, "application/json", min_segment_digits=9)
    found = []
    for seg in parsed.segments:
        findings = detector.find(seg.text, field_name=seg.field_name)
        if findings:
            found.append((seg.index, seg.text, findings))
    return rebuild_body(Rewriter(), parsed, found, _AnyToken()) if found else body


def _rewritten_by_scan(body: bytes, patch_in_place: bool) -> bytes:
    from redactor.redaction.rewrite import Rewriter
    from redactor.redaction.scanning import ScanRequest, rebuild_body, scan_body

    request = ScanRequest(body, "application/json", None, "text", 10**7, None)
    scan = scan_body(default_detector(), request, patch_in_place=patch_in_place)
    if not scan.found:
        return body
    return rebuild_body(Rewriter(), scan.parsed, scan.found, _AnyToken())


@settings(max_examples=400, deadline=None)
@given(codec_documents, st.booleans(), st.booleans())
def test_the_fast_path_rewrites_a_body_byte_for_byte_as_the_codec_does(
    doc, ascii_only: bool, patch_in_place: bool
) -> None:
    body = json.dumps(doc, ensure_ascii=ascii_only).encode()
    assert _rewritten_by_scan(body, patch_in_place) == _rewritten_by_codec(body)


# Pieces of HTML as helpdesks write it, and as an attacker might: digits with separators,
# inline and block tags, references that decode to digits or separators, quotes, comments,
# a lone `<`, script text.
HTML_PIECES = [
    "4111", "1111", "536", "90", "4399", "12", "7", " ", "-", ".", "/", "\n",
    "<b>", "</b>", "<br>", "<p>", "</p>", "<span class='x>y'>", "</span>", '<a href="',
    '">', "&#32;", "&nbsp;", "&#52;", "&#x34;", "&amp;", "&foo", "<!--", "-->", "<", ">",
    "'", '"', "<script>", "</script>", "card", "x", "=", "&#1633;", "&sup2;",
]  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(HTML_PIECES), max_size=24).map("".join))
def test_html_the_screen_clears_has_no_segment_that_may_hold_a_value(text: str) -> None:
    from redactor.bodies.html_body import HtmlView
    from redactor.bodies.json_prescan import html_may_hold_value
    from redactor.detection.screen import may_hold_value

    if html_may_hold_value(text):
        return
    segments = HtmlView(text, "body").segments
    # The screen's own claim (`may_hold_value` says "maybe" to any non-ASCII text, such as a
    # decoded `&nbsp;`), then detection's.
    assert not any(may_hold_value(s.text) for s in segments if s.text.isascii())
    assert not any(default_detector().find(s.text, field_name=s.field_name) for s in segments)


def test_the_html_screen_reads_a_value_split_by_markup_or_references() -> None:
    from redactor.bodies.json_prescan import html_may_hold_value

    for text in (
        "<p>4111 1111 <a title='x>y'>1111 1111</a></p>",
        "<p>4111&nbsp;1111&nbsp;1111&nbsp;1111</p>",
        "<b>536</b>-90-<i>4399</i>",
        '<a href="?c=4111&#32;1111&#32;1111&#32;1111">x</a>',
        "<p>unclosed <a title='x>4111 1111 1111 1111</p>",
    ):
        assert html_may_hold_value(text), text
    assert not html_may_hold_value("<p>Order 5521 of 2024-03-12 at 10:30</p>")
    # A browser shows a comment as nothing, and so does HtmlView: the run spans it.
    assert html_may_hold_value("<p>4111 1111 <!-- a > b -->1111 1111</p>")
    # A hidden element's text is stepped over by the run around it.
    assert html_may_hold_value("<p>4111 1111 <span hidden>x</span>1111 1111</p>")
