"""HtmlView's work is linear in its source, whatever the markup (issue 18, bounded cost):
an unterminated tag used to be parsed again from every `<` after it, so `<a<a<a...` or
`<b title="` repeated cost time quadratic in the body (16 KB: 0.6 s; 20 KB of `<b title="`:
32 s, every failed parse adding its attribute values as segments again).

The work is counted, not timed: the markup patterns are wrapped so every character they
consume is counted, and the count must stay within a constant times the source's length.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from redactor.bodies import html_body
from redactor.bodies.html_body import HtmlView
from tests.bodies.shapes import value_pattern

PAN = "4111111111111111"


class _Counting:
    """A compiled pattern that counts the characters its matches consume."""

    def __init__(self, pattern: re.Pattern[str], counter: list[int]) -> None:
        self._pattern = pattern
        self._counter = counter

    def match(self, source: str, pos: int = 0, *args: Any) -> re.Match[str] | None:
        found = self._pattern.match(source, pos, *args)
        if found is not None:
            self._counter[0] += found.end() - pos
        return found

    def search(self, source: str, pos: int = 0, *args: Any) -> re.Match[str] | None:
        found = self._pattern.search(source, pos, *args)
        self._counter[0] += (found.end() if found is not None else len(source)) - pos
        return found

    def finditer(self, source: str, pos: int = 0, endpos: int | None = None) -> Any:
        end = len(source) if endpos is None else endpos
        self._counter[0] += max(0, end - pos)
        return self._pattern.finditer(source, pos, end)


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counter = [0]
    for name in ("_ATTRIBUTE", "_ATTR_GAP", "_START_TAG", "_END_TAG", "_CHARREF"):
        monkeypatch.setattr(html_body, name, _Counting(getattr(html_body, name), counter))
    return counter


HOSTILE_UNITS = [
    "<a",
    '<b title="',
    "<b title='",
    "<a x",
    "<a\n",
    '<a x="y"',
    "<p><a",
    "<a <b>",
    "</a",
    "<!",
    "<a&#52;",
]


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_markup_work_is_linear_in_the_source(work: list[int], unit: str) -> None:
    source = unit * 4000
    view = HtmlView(source)
    # Quadratic parsing consumed about len(source) ** 2 / (2 * len(unit)) characters here
    # (tens of millions); linear parsing a few times the source.
    assert work[0] <= 4 * len(source), unit
    # Every character is in at most one segment (a failed parse added its attributes again).
    assert sum(len(s.text) for s in view.segments) <= len(source)


@pytest.mark.parametrize("unit", ["<a", '<b title="'])
def test_a_value_after_an_unterminated_tag_is_still_read(unit: str) -> None:
    view = HtmlView(unit * 50 + f" card {PAN} " + unit * 50)
    assert any(value_pattern(PAN).search(s.text) for s in view.segments)


def test_the_attributes_of_a_terminated_tag_are_still_segments() -> None:
    view = HtmlView(f'<a href="x">a</a> <b title="card {PAN}" <i class="z">')
    kinds = {(s.kind, s.field_name) for s in view.segments if PAN in s.text}
    assert ("html_attr", "title") in kinds


def test_a_two_megabyte_hostile_body_is_read_in_a_subprocess() -> None:
    # A safety net, not a timing: quadratic parsing of these took hours; linear, seconds.
    code = (
        "from redactor.bodies.html_body import HtmlView\n"
        "for unit in ('<a', '<b title=\"', '<a x'):\n"
        "    HtmlView(unit * (2_000_000 // len(unit)))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)  # noqa: S603 - fixed code
