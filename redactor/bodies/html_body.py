"""HTML bodies: text and attribute values are segments, markup is kept byte for byte.

Character references are decoded for detection (`4111&#32;1111` reads `4111 1111`) and an
edit maps back to the raw bytes of the references it covers. Inline tags (`<b>`, `<span>`,
...) do not break a text segment: they read as nothing, and `<br>` reads as a newline, so a
card number written `4111 1111<br>1111 1111` or `<b>4111</b> 1111 ...` is one finding. An edit
that spans such a tag replaces it together with the digits (the markup inside a card number
is lost, never the redaction). Block tags, comments and raw-text elements end a segment.
The scanner is a small tokenizer, not a tree builder: it never re-serialises, so it cannot
change bytes it was not asked to change.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from redactor.bodies.hidden import hidden_view, may_hide_text
from redactor.bodies.limits import count_entities, count_tags
from redactor.bodies.segments import Edit, PlainView, Segment, SegmentTable, TextView
from redactor.bodies.text_body import TextBody, decode_text
from redactor.bodies.textmap import TextMap, TextMapBuilder, map_edits

__all__ = ["HtmlView", "looks_like_html", "parse_html"]

_INLINE_TAGS = frozenset(
    [
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "cite",
        "code",
        "data",
        "del",
        "dfn",
        "em",
        "font",
        "i",
        "ins",
        "kbd",
        "label",
        "mark",
        "nobr",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "time",
        "tt",
        "u",
        "var",
        "wbr",
    ]
)
# Tags counted against the body's `max_tags` this many at a time.
_TAG_BATCH = 1024
_RAW_TEXT_TAGS = frozenset({"script", "style", "xmp", "noembed", "noframes"})
_RCDATA_TAGS = frozenset({"textarea", "title"})
_SPACE = "\t\n\f\r "

_CHARREF = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")
_START_TAG = re.compile(r"<([A-Za-z][^\t\n\f\r />]*)")
_END_TAG = re.compile(r"</([A-Za-z][^\t\n\f\r />]*)[^>]*>")
_ATTR_GAP = re.compile(r"[\t\n\f\r /]*")
_ATTRIBUTE = re.compile(
    r"""([^\t\n\f\r />][^\t\n\f\r /=>]*)"""
    r"""(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"([^"]*)"|'([^']*)'|([^\t\n\f\r >]*)))?"""
)
# Known tag names only: Slack's `<@U123>` and `<https://x|label>` are not HTML, and reading them
# as tags would hide their text from detection.
_HTML_HINT = re.compile(
    r"<(?:!--|/?(?:p|div|br|span|a|b|i|u|em|strong|font|html|body|head|table|tr|td|th|tbody|ul|"
    r"ol|li|blockquote|pre|code|img|h[1-6]|hr|center|section|article|header|footer|meta|style|"
    r"title|small|sup|sub|label)[\t\n\f\r />])",
    re.IGNORECASE,
)
_UNQUOTED_UNSAFE = re.compile(r"[\t\n\f\r =`]")


def looks_like_html(text: str) -> bool:
    """True when `text` contains markup of a known HTML tag or a comment."""
    return _HTML_HINT.search(text) is not None


def _escape_text(text: str) -> str:
    return html.escape(text, quote=False)


def _escape_quoted(text: str) -> str:
    return html.escape(text, quote=True)


def _escape_unquoted(text: str) -> str:
    # An unquoted value ends at whitespace and may not hold = or `: reference them instead.
    return _UNQUOTED_UNSAFE.sub(lambda m: f"&#{ord(m.group())};", html.escape(text, quote=True))


def _keep(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class _Slot:
    text: str
    text_map: TextMap
    escape: Callable[[str], str]
    # What the text hides behind percent escapes or a `data:` URI (bodies.hidden), if anything.
    view: TextView | None = None


def _hidden_or_plain(text: str, field_name: str | None, kind: str) -> TextView:
    return hidden_view(text, field_name, kind, _hidden_or_plain) or PlainView(
        text, field_name, kind
    )


def _add_decoded(builder: TextMapBuilder, source: str, start: int, end: int) -> None:
    """Append source[start:end] to `builder`, decoding character references as units."""
    cursor = start
    for match in _CHARREF.finditer(source, start, end):
        decoded = html.unescape(match.group())
        if decoded == match.group():
            continue  # not a reference (e.g. `&foo` with no such name): plain text
        count_entities()
        builder.literal(source[cursor : match.start()], cursor)
        builder.unit(decoded, match.start(), match.end())
        cursor = match.end()
    builder.literal(source[cursor:end], cursor)


class HtmlView:
    """Segments for the text runs, attribute values, comments and scripts of an HTML text."""

    __slots__ = ("_field_name", "_run", "_slots", "_table", "segments")

    def __init__(self, source: str, field_name: str | None = "body") -> None:
        """Scan `source`. Never raises for malformed markup: what is not a tag is text."""
        self._field_name = field_name
        self._slots: list[_Slot] = []
        self._table = SegmentTable()
        self._run: TextMapBuilder | None = None
        self._scan(source)
        self.segments: Sequence[Segment] = self._table.segments

    def _add_slot(
        self,
        text: str,
        text_map: TextMap,
        escape: Callable[[str], str],
        name: str | None,
        kind: str,
    ) -> None:
        slot_id = len(self._slots)
        view = None
        if kind in ("html_text", "html_attr") and may_hide_text(text):
            # A link with `%34%31...`, a `data:` URI: read decoded (issue 18, item 5).
            view = hidden_view(text, name, kind, _hidden_or_plain)
        self._slots.append(_Slot(text, text_map, escape, view))
        if view is not None:
            self._table.add(slot_id, view.segments)
        else:
            self._table.add(slot_id, (Segment(0, text, name, kind),))

    def _flush(self) -> None:
        run, self._run = self._run, None
        if run is not None and run.text_len:
            text, text_map = run.build()
            self._add_slot(text, text_map, _escape_text, self._field_name, "html_text")

    def _run_builder(self, pos: int) -> TextMapBuilder:
        if self._run is None:
            self._run = TextMapBuilder(pos)
        return self._run

    def _add_verbatim(self, source: str, start: int, end: int, kind: str) -> None:
        builder = TextMapBuilder(start)
        builder.literal(source[start:end], start)
        text, text_map = builder.build(end)
        if text:
            self._add_slot(text, text_map, _keep, self._field_name, kind)

    def _scan(self, source: str) -> None:
        pos = 0
        length = len(source)
        # Tags are counted against the body's budget in batches (a context-variable lookup
        # per tag would cost more than the tag), so a million tiny tags stop early (413).
        unbudgeted = 0
        while pos < length:
            lt = source.find("<", pos)
            if lt < 0:
                lt = length
            if lt > pos:
                _add_decoded(self._run_builder(pos), source, pos, lt)
            if lt >= length:
                break
            pos = self._scan_markup(source, lt)
            unbudgeted += 1
            if unbudgeted == _TAG_BATCH:
                count_tags(unbudgeted)
                unbudgeted = 0
        count_tags(unbudgeted)
        self._flush()

    def _scan_markup(self, source: str, lt: int) -> int:
        """Handle the markup at `lt`; return where text resumes."""
        if source.startswith("<!--", lt):
            self._flush()
            close = source.find("-->", lt + 4)
            end = len(source) if close < 0 else close
            self._add_verbatim(source, lt + 4, end, "html_comment")
            return len(source) if close < 0 else close + 3
        end_tag = _END_TAG.match(source, lt)
        if end_tag is not None:
            self._markup_unit(end_tag.group(1).lower(), lt, end_tag.end())
            return end_tag.end()
        if source.startswith(("<!", "<?", "</"), lt):
            # Doctype, CDATA, processing instruction, bogus comment: scan what they hold.
            self._flush()
            close = source.find(">", lt + 2)
            end = len(source) if close < 0 else close
            self._add_verbatim(source, lt + 2, end, "html_comment")
            return len(source) if close < 0 else close + 1
        start_tag = _START_TAG.match(source, lt)
        if start_tag is None:
            # A lone `<` is text.
            self._run_builder(lt).literal("<", lt)
            return lt + 1
        tag_end = self._scan_attributes(source, start_tag.end())
        if tag_end is None:
            # Unterminated tag: browsers drop it; we scan it as text so nothing hides in it.
            self._run_builder(lt).literal("<", lt)
            return lt + 1
        name = start_tag.group(1).lower()
        self._markup_unit(name, lt, tag_end)
        if name in _RAW_TEXT_TAGS or name in _RCDATA_TAGS:
            closer = re.compile(rf"</{re.escape(name)}[\t\n\f\r />]", re.IGNORECASE).search(
                source, tag_end
            )
            content_end = len(source) if closer is None else closer.start()
            self._flush()
            if name in _RAW_TEXT_TAGS:
                self._add_verbatim(source, tag_end, content_end, "html_raw_text")
            else:
                builder = TextMapBuilder(tag_end)
                _add_decoded(builder, source, tag_end, content_end)
                text, text_map = builder.build(content_end)
                if text:
                    self._add_slot(text, text_map, _escape_text, self._field_name, "html_text")
            return content_end
        return tag_end

    def _markup_unit(self, name: str, start: int, end: int) -> None:
        if name == "br":
            self._run_builder(start).unit("\n", start, end)
        elif name in _INLINE_TAGS:
            self._run_builder(start).unit("", start, end)
        else:
            self._flush()

    def _scan_attributes(self, source: str, pos: int) -> int | None:
        """Add a segment per attribute value; return the index after `>`, None if unterminated."""
        length = len(source)
        while True:
            pos = _ATTR_GAP.match(source, pos).end()  # type: ignore[union-attr]
            if pos >= length:
                return None
            if source[pos] == ">":
                return pos + 1
            attribute = _ATTRIBUTE.match(source, pos)
            if attribute is None:  # defensive: the pattern matches any non-gap character
                return None
            for group, escape in ((2, _escape_quoted), (3, _escape_quoted), (4, _escape_unquoted)):
                if attribute.group(group) is not None:
                    start, end = attribute.span(group)
                    builder = TextMapBuilder(start)
                    _add_decoded(builder, source, start, end)
                    text, text_map = builder.build(end)
                    if text:
                        self._add_slot(text, text_map, escape, attribute.group(1), "html_attr")
                    break
            pos = attribute.end()

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """Edits on the HTML source. Raises ValueError for invalid edits."""
        mapped: list[Edit] = []
        for slot_id, local_edits in self._table.route(edits).items():
            slot = self._slots[slot_id]  # type: ignore[index]
            on_text = slot.view.source_edits(local_edits) if slot.view else local_edits[0]
            mapped.extend(map_edits(slot.text, slot.text_map, on_text, slot.escape))
        mapped.sort(key=lambda e: (e.start, -e.end))
        result: list[Edit] = []
        for edit in mapped:
            # A text edit that spans an inline tag replaces the whole tag, so an edit inside
            # one of that tag's attributes is already covered by it.
            if result and edit.end <= result[-1].end and edit.start < result[-1].end:
                continue
            result.append(edit)
        return result


def parse_html(body: bytes, charset: str | None = None) -> TextBody:
    """Parse an HTML body. Raises BodyUnparseableError for bytes invalid in a declared charset."""
    text, codec, errors = decode_text(body, charset)
    return TextBody(body, text, codec, errors, HtmlView(text, "body"))
