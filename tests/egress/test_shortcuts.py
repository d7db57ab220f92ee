"""The egress verifier's shortcuts against the long way.

Every screen in `redactor/egress` that only saves work (a C pass that proves a slower search
would find nothing, a search on fewer characters, a question asked once instead of per
window) has a long way, taken when `evidence.SHORTCUTS` is False: the plain regex over the
whole text, every substitution, every question. On drawn inputs, each shortcut answers what
its long way answers, and whole bodies hiding a value where a shortcut looks are refused
with the same reading named, either way.
"""

from __future__ import annotations

import html
import json
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from redactor.egress import evidence, readings, verify_request
from redactor.errors import UnreadableValueError, UnverifiableMessageError
from tests.egress import hostile

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def _long_way() -> Iterator[None]:
    saved = evidence.SHORTCUTS
    evidence.SHORTCUTS = False
    try:
        yield
    finally:
        evidence.SHORTCUTS = saved


def _both(fn: Callable[..., Any], *args: Any) -> tuple[Any, Any]:
    fast = fn(*args)
    with _long_way():
        slow = fn(*args)
    return fast, slow


# --- drawn texts ------------------------------------------------------------------------------

_DIGITS = st.text("0123456789", min_size=1, max_size=6)
# Separators of the chain rule (ASCII and not), letters of both kinds, characters normalize
# rewrites (fullwidth and Arabic-Indic digits, an ignorable, the katakana dash), SSN words
# in several cases, bidi marks and tags, escapes.
_PIECES = st.sampled_from(
    [
        " ", "-", ".", "/", "_", ":", ",", "(", ")", "\n", "\t", "  ", " - ", "\\n", "\\u0034",
        "\\x31", "a", "Z", "x", "é", "ß", "ı", "\u00b7", "\u2009", "\u00a0", "\u30fc", "\u200b",
        "\u00ad", "\ufe0f", "\uff14", "\u0663", "\u2463", "\u00b2", "SSN", "ssn", "Ssn#", "ss#",
        "itin", "ITIN", "social security", "Social  Security", "soc. sec", "SSA", "classn",
        "\u202e", "\u2067", "\u202c", "<bdo dir=rtl>", "<BDO DIR='RTL'>", "</bdo>",
        "<span style='unicode-bidi:bidi-override'>", "<b>", "<", ">", "&amp;", "’", "“", "—",
        "\ud800", "\U0001d7d2", "\u017fsn", "\u0130T\u0130N", "\u0131tin", "\u212a", "\u1e9e",
        "message", "SSNs", "ssnx", "Soc.Sec", "socialsecurity",
    ]
)  # fmt: skip
_TEXTS = st.lists(st.one_of(_DIGITS, _PIECES), max_size=60).map("".join)


def _values(seed: int, count: int) -> list[hostile.Value]:
    rng = random.Random(seed)
    return [hostile.make_value(rng) for _ in range(count)]


@st.composite
def _texts_with_values(draw: st.DrawFn) -> str:
    """Drawn text with real card numbers and SSNs spelt into it, parted every way."""
    pieces = draw(st.lists(st.one_of(_DIGITS, _PIECES), max_size=40))
    for value in _values(draw(st.integers(0, 10_000)), draw(st.integers(0, 3))):
        sep = draw(st.sampled_from([" ", "-", "", "\u00b7", "\u2009", " \u200b", "\\n", ". "]))
        spelt = value.spelt(sep)
        if draw(st.booleans()):
            spelt = value.word + draw(st.sampled_from([" ", ": ", "#", "é "])) + spelt
        pieces.insert(draw(st.integers(0, len(pieces))), spelt)
    return "".join(pieces)


# --- one shortcut at a time -------------------------------------------------------------------


@SETTINGS
@given(st.one_of(_TEXTS, _texts_with_values()))
def test_chains_are_the_long_ways(text: str) -> None:
    found = [m.span() for m in evidence._chains(text)]
    assert found == [m.span() for m in evidence._CHAIN.finditer(text)]


@SETTINGS
@given(st.one_of(_TEXTS, _texts_with_values()))
def test_strong_values_are_the_long_ways(text: str) -> None:
    for candidate in (text, evidence.normalize(text)):
        fast, slow = _both(evidence.find_strong, candidate)
        assert fast == slow


@SETTINGS
@given(
    st.one_of(
        _TEXTS,
        _texts_with_values(),
        st.text(st.characters(exclude_categories=()), max_size=80),
    )
)
def test_normalize_and_could_hold_are_the_long_ways(text: str) -> None:
    (fast_text, fast_bytes), (slow_text, _) = _both(evidence.normalize_encoded, text)
    assert fast_text == slow_text
    assert fast_bytes == fast_text.encode("utf-8", "surrogatepass")
    fast, slow = _both(evidence.could_hold, fast_text)
    assert fast == slow


@SETTINGS
@given(st.one_of(_TEXTS, _texts_with_values(), st.text(st.characters(), max_size=80)))
def test_ssn_word_look_is_the_long_ways(text: str) -> None:
    assert evidence._has_ssn_word(text) == (evidence._SSN_WORD.search(text) is not None)


_MARKUP = st.lists(
    st.one_of(
        _PIECES,
        st.sampled_from(
            [
                "<p>",
                "</p>",
                "<SCRIPT>",
                "<Style",
                "< style",
                "<tItLe>",
                "<head",
                "<header>",
                "<iframe",
                "<object",
                "<noscript>",
                "<template>",
                "hidden",
                "HIDDEN",
                "Display",
                "visibility",
                "opacity",
                "font-size",
                "font size",
                "fontsize",
                "hid\u0131en",
                "d\u0131splay",
                "\u017ftyle",
                "<\u017fcript",
                "\u0130FRAME",
                "<t\u0130tle>",
                "\u212a",
                "&gt;",
                "&amp;",
                "hidde",
                "idden",
            ]
        ),
    ),
    max_size=30,
).map("".join)


_REFERENCES = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "&",
                "&amp;",
                "&amp",
                "&gt;",
                "&gt",
                "&gtfoo;",
                "&GT;",
                "&lt;",
                "&#",
                "&#x",
                "&#62;",
                "&#x3e;",
                "&#X3E",
                "&#0;",
                "&#1;",
                "&#128;",
                "&#xd800;",
                "&#1114112;",
                "&amp;gt;",
                "&&gt;",
                "&nbsp;",
                "&notin;",
                "&notit;",
                "&not",
                ";",
                "#",
                "x",
                "3",
                "gt",
                " ",
                "\t",
                "é",
                "&é;",
                "&" + "a" * 40 + ";",
                "<",
                ">",
            ]
        ),
        st.text(st.sampled_from("&#;xX0123456789abgtlmpqu ;é"), max_size=6),
    ),
    max_size=30,
).map("".join)


@SETTINGS
@given(st.one_of(_REFERENCES, _MARKUP))
@example("&amp;gt; &gt;")
@example("&gtfoo; &gt &gt;")
@example("&#x26;#52; &#52;")
def test_references_unescaped_are_the_long_ways(text: str) -> None:
    bare, spelt = readings._unescape(text)
    assert bare == html.unescape(text)
    assert readings._spells_inert(bare, text, spelt) == (
        set(bare).difference(text) <= readings._INERT
    )
    with _long_way():
        assert readings._unescape(text) == (html.unescape(text), None)


@SETTINGS
@given(st.one_of(_MARKUP, st.text(st.characters(), max_size=80)))
def test_hiding_look_is_the_long_ways(text: str) -> None:
    assert readings._has_hiding(text) == (readings._HIDING.search(text) is not None)


@SETTINGS
@given(st.one_of(_TEXTS, st.text(st.characters(exclude_categories=()), max_size=80)))
def test_bidi_look_is_the_long_ways(text: str) -> None:
    assert readings._has_bidi(text) == (readings._BIDI.search(text) is not None)


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.sampled_from([b"\x82", b"\xa2", b"\xa3"]),
            st.binary(min_size=1, max_size=2),
            st.sampled_from([b"\x82\x50", b"\xa3\xb4", b"\xa2\xb0", b"\x82\x4f", b"\xa3\xb9"]),
        ),
        max_size=40,
    ).map(b"".join)
)
def test_legacy_digit_look_is_the_long_ways(data: bytes) -> None:
    fast, slow = _both(readings._legacy_digits, data)
    assert fast == slow == (len(readings._LEGACY_DIGIT.findall(data)) >= 9)


@SETTINGS
@given(st.one_of(_TEXTS, st.text(st.characters(exclude_categories=()), max_size=80)))
def test_escape_looks_on_bytes_are_the_texts(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    assert (readings._ESCAPE_START_BYTES.search(data) is None) == (
        re.search(r"\\[ux]", text) is None
    )
    assert (readings._UNICODE_ESCAPE_BYTES.search(data) is None) == (
        re.search(r"\\u", text) is None
    )


# --- whole messages ---------------------------------------------------------------------------


def _outcome(body: bytes, *, content_type: str | None = "application/json", **kw: Any) -> Any:
    try:
        verify_request(
            body,
            content_type=content_type,
            content_encoding=kw.get("content_encoding"),
            url=kw.get("url", "/hook"),
            headers=kw.get("headers", [("Content-Type", "application/json")]),
        )
    except (UnreadableValueError, UnverifiableMessageError) as exc:
        return type(exc).__name__, exc.args
    return None


def _both_outcomes(body: bytes, **kw: Any) -> tuple[Any, Any]:
    fast = _outcome(body, **kw)
    with _long_way():
        slow = _outcome(body, **kw)
    return fast, slow


# Where each shortcut looks: what a value is parted or spelt with there.
_HIDING: list[tuple[str, Callable[[hostile.Value], str]]] = [
    ("non-ASCII separators", lambda v: v.spelt("\u00b7")),
    ("thin spaces", lambda v: v.spelt("\u2009")),
    ("separators after a short escape", lambda v: "x\\n " + v.spelt("\u00b7")),
    ("ignorables", lambda v: v.spelt("-", lambda d: d + "\u200b")),
    ("Arabic-Indic digits", lambda v: v.spelt(" ", lambda d: chr(0x0660 + int(d)))),
    ("fullwidth digits", lambda v: v.spelt("-", lambda d: chr(0xFF10 + int(d)))),
    ("katakana dashes", lambda v: v.spelt("\u30fc")),
    ("among other scripts", lambda v: "日本語 " + v.spelt(" ") + " テスト"),
    ("a word then nine digits", lambda v: v.word + ": " + v.digits),
    ("reversed by an override", lambda v: "é \u202e" + v.spelt(" ")[::-1] + "\u202c"),
    ("reversed in a bdo", lambda v: "<bdo dir=rtl>" + v.spelt(" ")[::-1] + "</bdo> é"),
]
_HONEST = [
    "Thanks \u2014 I\u2019ll call you at (415) 555-0100 tomorrow.",
    "Order 123456789 shipped on 2026-06-19 at 13:58.",
    "Caf\u00e9 \u201cOpen\u201d hours: Mon\u2013Fri 8:00\u201318:00, tel. +33 1 42 68 53 00.",
    "Ticket #30003, ref TR648, parcel 1Z999AA10123456784.",
    # (an SSN word within reach of nine digits is strong evidence: none here)
    "Reach the office at 800-772-1213, or write to us.",
]


@SETTINGS
@given(
    seed=st.integers(0, 100_000),
    way=st.sampled_from(range(len(_HIDING))),
    noise=st.lists(st.sampled_from(_HONEST), max_size=4),
    ensure_ascii=st.booleans(),
    shape=st.sampled_from(["json", "text"]),
)
def test_values_hidden_where_a_shortcut_looks_are_refused_either_way(
    seed: int, way: int, noise: list[str], ensure_ascii: bool, shape: str
) -> None:
    (value,) = _values(seed, 1)
    _name, hide = _HIDING[way]
    rng = random.Random(seed)
    lines = [*noise]
    lines.insert(rng.randint(0, len(lines)), hide(value))
    text = "\n".join(lines)
    if shape == "json":
        body = json.dumps({"comment": {"body": text, "id": seed}}, ensure_ascii=ensure_ascii)
        fast, slow = _both_outcomes(body.encode("utf-8", "surrogatepass"))
    else:
        fast, slow = _both_outcomes(
            text.encode("utf-8", "surrogatepass"), content_type="text/plain", headers=[]
        )
    assert fast == slow
    assert fast is not None


@SETTINGS
@given(
    noise=st.lists(st.sampled_from(_HONEST), min_size=1, max_size=6),
    ensure_ascii=st.booleans(),
)
def test_honest_bodies_pass_either_way(noise: list[str], ensure_ascii: bool) -> None:
    body = json.dumps({"comment": {"body": "\n".join(noise)}}, ensure_ascii=ensure_ascii)
    assert _both_outcomes(body.encode()) == (None, None)


@pytest.mark.parametrize("cls", sorted(hostile.CLASSES))
def test_the_hostile_generator_gets_the_same_answers_either_way(cls: str) -> None:
    for req in hostile.generate(cls, 30, seed=18):
        if req.raw is not None or req.answer is not None:
            continue
        headers = {k.lower(): v for k, v in req.headers}
        kw = {
            "content_type": headers.get("content-type"),
            "content_encoding": headers.get("content-encoding"),
            "url": req.path,
            "headers": req.headers,
        }
        fast, slow = _both_outcomes(req.body, **kw)
        assert fast == slow, (cls, req.name)


@pytest.mark.parametrize("word", ["aSSN", "xssn", "bitin", "SSN", "itin"])
@pytest.mark.parametrize("gap", range(18, 30))
def test_an_ssn_word_at_the_edge_of_reach_is_weighed_as_the_long_way_does(
    word: str, gap: int
) -> None:
    # The window's look around it cuts the text 24 characters before the digits: a word cut
    # there is seen without the letter before it. The whole-text look decides, as before.
    for text in (f"{word}{' ' * gap}536904399", f"536904399{' ' * gap}{word}z"):
        fast, slow = _both(evidence.find_strong, text)
        assert fast == slow
        fast, slow = _both_outcomes(text.encode(), content_type="text/plain", headers=[])
        assert fast == slow


@pytest.mark.parametrize(
    "text",
    [
        "é \u2067" + "1111 1111 1111 1114"[::-1],
        "é \u202e" + "1111 1111 1111 1114"[::-1],
        "é <bdo dir=rtl>" + "1111 1111 1111 1114"[::-1],
        "é <SPAN style='unicode-BIDI: bidi-override'>" + "1111 1111 1111 1114"[::-1],
    ],
)
def test_each_bidi_alternative_is_looked_for(text: str) -> None:
    assert readings._has_bidi(text)
    fast, slow = _both_outcomes(text.encode(), content_type="text/plain", headers=[])
    assert fast == slow


def test_many_distinct_references_are_unescaped_in_one_pass() -> None:
    # One `replace` per distinct reference reads the text each time: thousands of different
    # references (a hostile text) take html.unescape's single pass instead.
    text = " ".join(f"&#{code};&q{code};" for code in range(0x2000, 0x2400))
    assert readings._unescape(text) == (html.unescape(text), None)
    few = " ".join(f"&#{code};" for code in range(0x2000, 0x2010))
    assert readings._unescape(few)[0] == html.unescape(few)
