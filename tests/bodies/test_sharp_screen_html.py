"""The JSON fast path's HTML screens read HtmlView's segments exactly: when they clear an HTML
string (and the screen for hidden text clears it too), no segment HtmlView makes of it gives the detector a candidate (or, with `every_run`,
a run), and the fast path's answer on a whole webhook is the codec's, findings, rewrite and
the digits recorded for the egress verifier alike.

HTML is drawn from the text parts of tests/detection/test_sharp_screen.py (digit groups,
separators, labels, PANs and SSNs grouped every way) between inline and block tags, tags with
a quoted `>`, attribute values holding digits, character references that decode to digits,
separators or a backslash, comments, percent escapes and a lone `<`.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from redactor.bodies import parse_body
from redactor.bodies.html_body import HtmlView, marked_text_runs
from redactor.bodies.json_prescan import _html_may_hide_text, html_may_hold_value, plain_json_texts
from redactor.detection import Detector, default_detector
from redactor.detection.digits import digit_count
from redactor.detection.recognizers import find_all_candidates
from redactor.detection.textview import view_of
from redactor.egress import SeenValues
from redactor.redaction.scanning import find_windowed
from tests.bodies.test_json_prescan import _rewritten_by_codec, _rewritten_by_scan
from tests.detection.test_sharp_screen import parts, values

EXAMPLES = int(os.environ.get("SCREEN_EXAMPLES", "1000"))

MARKUP = [
    "<b>", "</b>", "<span>", "</span>", "<i>", "</i>", "<p>", "</p>", "<div>", "</div>",
    "<td>", "</td>", "<tr>", "</tr>", "<th>", "<br>", "<br/>", "</a>", "<wbr>", "<o:p>",
    "<td class='x>y'>", "<font color=red>", "<span style=\"color: red\">", "<img alt=",
    "<!-- x -->", "<", ">", "&#32;", "&nbsp;", "&#52;", "&#x34;", "&amp;", "&#45;",
    "&ndash;", "&gt;", "&#37;", "&#92;", "&#x27;", "&foo", "&sup2;", "%34%31", "%",
    "25% off", " ", "\n", "\n> ",
]  # fmt: skip


@st.composite
def attributes(draw: st.DrawFn) -> str:
    """A tag whose attribute value holds a text part, quoted or not."""
    value = draw(parts)
    quote = draw(st.sampled_from(['"', "'", ""]))
    if quote:
        value = value.replace(quote, "")
    name = draw(st.sampled_from(["title", "href", "data-card", "alt"]))
    return f"<a {name}={quote}{value}{quote}>"


@st.composite
def percent_encoded(draw: st.DrawFn) -> str:
    """A value in percent escapes in a link, each perhaps split by an inline tag (HtmlView's
    run reads `%3<b>4</b>` as `%34`) or a block one (a line break: no escape)."""
    out = [draw(st.sampled_from(["https://pay.test/?c=", "/s?q=", "www.x.test/", ""]))]
    for c in draw(values()):
        if not c.isascii():
            out.append(c)
            continue
        escape = f"%{ord(c):02X}"
        cut = draw(st.sampled_from([0, 0, 1, 2]))
        if cut:
            tag = draw(st.sampled_from(["<b></b>", "<span>", "</i>", "<br>", "<wbr>"]))
            escape = escape[:cut] + tag + escape[cut:]
        out.append(escape)
    return "".join(out)


html_texts = st.lists(
    st.one_of(parts, parts, st.sampled_from(MARKUP), attributes(), percent_encoded()),
    min_size=1,
    max_size=16,
).map(lambda pieces: "<div>" + "".join(pieces) + "</div>")


def _screens_clear(text: str, every_run: bool = False) -> bool:
    # As the fast path asks (json_prescan._Walk._html): the digit screen where the string has
    # 9 digits, and the screen for text behind percent escapes, `data:` URIs or base64.
    digits = digit_count(text) >= 9
    if digits and html_may_hold_value(text, every_run=every_run):
        return False
    return not _html_may_hide_text(text)


def _segment_candidates(text: str, runs: set[str] | None = None) -> list[object]:
    out: list[object] = []
    for seg in HtmlView(text, "body").segments:
        view = view_of(seg.text)
        out += find_all_candidates(view.text, ascii_digits=view.ascii_digits, runs=runs)
    return out


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html_texts)
@example("<p>4111 1111 <b>1111</b> 1111</p>")
@example("<td>536</td><td>90</td><td>4399</td>")
@example("<p>Total £4111&nbsp;1111 1111 1111</p>")
@example("<a title='x>y 4111111111111111'>pay</a>")
@example(
    "<p>https://pay.test/?c=%3<b>4</b>%3<b>1</b>%3<b>1</b>%3<b>1</b>%2<b>0</b>%3<b>1</b>%3<b>1</b>%3<b>1</b>%3<b>1</b>%2<b>0</b>%3<b>1</b>%3<b>1</b>%3<b>1</b>%3<b>1</b>%2<b>0</b>%3<b>1</b>%3<b>1</b>%3<b>1</b>%3<b>1</b></p>"
)
def test_html_the_screen_clears_gives_no_segment_a_candidate(detector: Detector, text: str) -> None:
    if not _screens_clear(text):
        return
    assert _segment_candidates(text) == []
    segments = HtmlView(text, "body").segments
    assert not any(detector.find(s.text, field_name=s.field_name) for s in segments)


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html_texts)
def test_with_every_run_the_html_screen_clears_only_html_without_a_run(text: str) -> None:
    if not _screens_clear(text, every_run=True):
        return
    runs: set[str] = set()
    assert _segment_candidates(text, runs) == []
    assert runs == set()


def _codec_seen(body: bytes) -> SeenValues:
    seen = SeenValues()
    detector = default_detector()
    for seg in parse_body(body, "application/json", min_segment_digits=9).segments:
        detector.find(
            seg.text, field_name=seg.field_name, considered=seen.considered, runs=seen.runs
        )
    return seen


documents = st.fixed_dictionaries(
    {
        "id": st.integers(10**8, 10**20),
        "body": st.lists(parts, max_size=10).map("".join),
        "html_body": html_texts,
        "tags": st.lists(st.sampled_from(["billing", "vip"]), max_size=2),
    }
)


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.booleans(), st.booleans())
def test_the_fast_path_finds_rewrites_and_records_what_the_codec_does(
    doc: dict[str, object], ascii_only: bool, patch_in_place: bool
) -> None:
    body = json.dumps(doc, ensure_ascii=ascii_only).encode()
    assert _rewritten_by_scan(body, patch_in_place) == _rewritten_by_codec(body)
    # With the egress verifier (every run asked): what the codec's reading records, the fast
    # path's texts record too, so the verifier vouches for the same numbers.
    plain = plain_json_texts(body, "application/json", None, every_run=True)
    if plain is None:
        return  # the codec reads the body
    fast = SeenValues()
    for text, key in plain:
        find_windowed(default_detector(), text, key, fast)
    codec = _codec_seen(body)
    fast_read, fast_runs = fast.read_digits()
    codec_read, codec_runs = codec.read_digits()
    assert codec_read <= fast_read
    assert codec_runs <= fast_runs


def _without_space(text: str) -> str:
    return "".join(text.split())


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html_texts)
@example("<p title='a>b'>1<b c=\"x>y\">2</b></p>")
@example("<a b=x>1<a b='x>2</a>")
def test_the_screen_walks_the_tags_and_values_htmlview_reads(text: str) -> None:
    # Where it walks at all, the screen's reading of the tags is HtmlView's: the same text
    # runs (but for the line breaks and spaces a tag makes), every attribute value that
    # could give it digits.
    walked = marked_text_runs(text, "\x00")
    if walked is None or "%" in text or "data:" in text.lower():
        return  # (text behind percent escapes: HtmlView adds decoded segments)
    runs, values = walked
    segments = HtmlView(text, "body").segments
    shown = "".join(s.text for s in segments if s.kind == "html_text")
    assert _without_space(runs.replace("\x00", "")) == _without_space(shown)
    wanted = [
        s.text
        for s in segments
        if s.kind == "html_attr"
        and (not s.text.isascii() or any(c in s.text for c in "0123456789&%\\"))
    ]
    assert all(v in values for v in wanted)
