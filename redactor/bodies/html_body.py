"""HTML (and XML) bodies: text and attribute values are segments, markup is kept byte for byte.

Character references are decoded for detection (`4111&#32;1111`, `4111&ensp;1111` read
`4111 1111`) and an edit maps back to the raw bytes of the references it covers. The text is
read the way a browser shows it:
- block tags (`<div>`, `<p>`, `<td>`, `<li>`, ...) and `<br>` read as one line break, so the
  text of a whole document is one run: a card typed one group per `<div>` (webmail) or per
  table cell reads `4111\n1111\n1111\n1111`, whitespace between blocks as nothing;
- every other tag reads as nothing (`<b>`, `<big>`, Outlook's `<o:p>`, `<img>`), and so do
  comments, `<script>`/`<style>` and elements a style hides (`display:none`,
  `visibility:hidden`, `font-size:0`, the `hidden` attribute): a decoy there does not break
  the number around it; what they hold is scanned as segments of its own.
An edit over markup replaces only the text around it (the tags stay where they were; the
token goes where the first digit was), so no byte outside a value changes.
A text run or an attribute value that hides text (percent escapes, a `data:` URI, base64:
bodies.hidden) is read through that decoding view, its edits mapped back the same way. Every
tag and comment counts against the body's `max_tags` (413 too_many_tags), in HTML bodies and
in HTML inside JSON strings alike.

That reading is for text: a body whose bytes are not all text (stray bytes kept as lone
surrogates, control characters: a binary file labelled HTML) is read the old, narrow way,
where block and unknown tags, comments and raw-text elements end a segment, so no digits are
joined across binary data. XML (`application/xml`, `text/xml`, `+xml`) is read like HTML
text, every element boundary a line break, with no element special.
The scanner is a small tokenizer, not a tree builder: it never re-serialises, so it cannot
change bytes it was not asked to change.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from redactor.bodies.hidden import hidden_view, may_hide_text
from redactor.bodies.limits import count_entities, count_tags
from redactor.bodies.segments import Edit, PlainView, Segment, SegmentTable, TextView
from redactor.bodies.text_body import TextBody, decode_text
from redactor.bodies.textmap import TextMap, TextMapBuilder, map_edits

__all__ = [
    "HtmlView",
    "looks_like_html",
    "marked_text_runs",
    "parse_html",
    "parse_xml",
    "reads_as_text",
]

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
# Tags a browser lays out as blocks: each reads as a line break (rendered reading).
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption center dd details dialog dir div dl dt "
    "fieldset figcaption figure footer form frameset h1 h2 h3 h4 h5 h6 head header hgroup hr "
    "html legend li listing main menu nav ol optgroup option p plaintext pre section summary "
    "table tbody td tfoot th thead tr ul".split()
)
_VOID_TAGS = frozenset("area base br col embed hr img input link meta source track wbr".split())
# Styles that hide an element from the reader (its text is not shown).
_HIDING_STYLE = re.compile(
    r"(?i)display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)"
    r"|opacity\s*:\s*0(?:\.0*)?\s*(?:;|$)|font-size\s*:\s*0(?:px|pt|em|rem|%)?\s*(?:;|$)"
)
# What is not text: stray bytes kept as lone surrogates, C0 controls but tab and line breaks.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\udc80-\udcff]")
# Hidden elements inside hidden elements are hidden already: past this depth they are not
# set apart again (a body of a million nested hidden spans costs no more than one).
_MAX_HIDDEN_DEPTH = 32
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


def reads_as_text(source: str) -> bool:
    """True when `source` is all text (no stray byte, no control character): it is read as a
    browser shows it (see the module docstring)."""
    return _NOT_TEXT.search(source) is None


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


# A reference's reading depends on the reference alone, and HTML repeats a few (`&#x27;`,
# `&amp;`, `&nbsp;`): html.unescape is a regex substitution with a Python callback per call.
_unescape_reference = functools.lru_cache(maxsize=4096)(html.unescape)


def _add_decoded(builder: TextMapBuilder, source: str, start: int, end: int) -> None:
    """Append source[start:end] to `builder`, decoding character references as units."""
    cursor = start
    for match in _CHARREF.finditer(source, start, end):
        decoded = _unescape_reference(match.group())
        if decoded == match.group():
            continue  # not a reference (e.g. `&foo` with no such name): plain text
        count_entities()
        builder.literal(source[cursor : match.start()], cursor)
        builder.unit(decoded, match.start(), match.end())
        cursor = match.end()
    builder.literal(source[cursor:end], cursor)


class HtmlView:
    """Segments for the text runs, attribute values, comments and scripts of an HTML text."""

    __slots__ = (
        "_at_break",
        "_field_name",
        "_hidden",
        "_last_gt",
        "_rendered",
        "_run",
        "_slots",
        "_table",
        "_trailing_break",
        "_xml",
        "segments",
    )

    def __init__(
        self,
        source: str,
        field_name: str | None = "body",
        *,
        rendered: bool | None = None,
        xml: bool = False,
    ) -> None:
        """Scan `source`. Never raises for malformed markup: what is not a tag is text.

        `rendered`: read as a browser shows it (module docstring); by default, when `source`
        is all text. `xml`: every tag is an element boundary, none is special.
        """
        self._field_name = field_name
        self._slots: list[_Slot] = []
        self._table = SegmentTable()
        self._run: TextMapBuilder | None = None
        self._rendered = reads_as_text(source) if rendered is None else rendered
        self._xml = xml
        # No visible text since the last line break (or the start): where whitespace between
        # blocks reads as nothing, so two blocks are one line break apart, never a blank line.
        self._at_break = True
        # The text so far ends in whitespace that holds a line break.
        self._trailing_break = False
        # Open hidden elements: [tag, depth of that tag inside, start, the run it interrupts,
        # _at_break then].
        self._hidden: list[list] = []
        # A tag that starts after the last `>` cannot end: known without parsing it.
        self._last_gt = source.rfind(">")
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
        self._at_break = True
        self._trailing_break = False
        if run is not None:
            run.drop_trailing_markup()
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

    def _invisible(self, start: int, end: int) -> None:
        """Markup read as nothing that does not end the run (rendered reading only)."""
        self._run_builder(start).unit("", start, end, markup=True)

    def _add_text(self, source: str, start: int, end: int) -> None:
        builder = self._run_builder(start)
        if self._rendered and self._at_break:
            # Whitespace right after a line break is not shown.
            visible = start
            while visible < end and source[visible] in _SPACE:
                visible += 1
            if visible > start:
                builder.unit("", start, visible, markup=True)
                start = visible
            if start == end:
                return
        _add_decoded(builder, source, start, end)
        if source[end - 1] in _SPACE:
            chunk = source[start:end]
            stripped = chunk.rstrip(_SPACE)
            trailing = "\n" in chunk[len(stripped) :] or "\r" in chunk[len(stripped) :]
            self._trailing_break = trailing or (not stripped and self._trailing_break)
        else:
            self._trailing_break = False
        self._at_break = False

    def _line_break(self, start: int, end: int) -> None:
        """A block tag: one line break between the text before and after (rendered reading)."""
        builder = self._run_builder(start)
        if self._at_break or self._trailing_break:
            builder.unit("", start, end, markup=True)
        else:
            builder.unit("\n", start, end, markup=True)
        self._at_break = True

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
                self._add_text(source, pos, lt)
            if lt >= length:
                break
            pos = self._scan_markup(source, lt)
            unbudgeted += 1
            if unbudgeted == _TAG_BATCH:
                count_tags(unbudgeted)
                unbudgeted = 0
        count_tags(unbudgeted)
        while self._hidden:
            self._end_hidden(length)
        self._flush()

    def _scan_markup(self, source: str, lt: int) -> int:
        """Handle the markup at `lt`; return where text resumes."""
        if source.startswith("<!--", lt):
            close = source.find("-->", lt + 4)
            end = len(source) if close < 0 else close
            resume = len(source) if close < 0 else close + 3
            return self._aside(source, lt, lt + 4, end, resume)
        end_tag = _END_TAG.match(source, lt)
        if end_tag is not None:
            name = end_tag.group(1).lower()
            if self._hidden and self._closes_hidden(name):
                self._end_hidden(end_tag.end())
            else:
                self._markup_unit(name, lt, end_tag.end())
            return end_tag.end()
        if source.startswith(("<!", "<?", "</"), lt):
            # Doctype, CDATA, processing instruction, bogus comment: scan what they hold.
            close = source.find(">", lt + 2)
            end = len(source) if close < 0 else close
            return self._aside(source, lt, lt + 2, end, len(source) if close < 0 else close + 1)
        start_tag = _START_TAG.match(source, lt)
        if start_tag is None:
            # A lone `<` is text.
            self._add_text(source, lt, lt + 1)
            return lt + 1
        scanned = self._scan_attributes(source, start_tag.end()) if lt < self._last_gt else None
        if scanned is None:
            # Unterminated tag: it runs to the end of the source (no `>` outside a quoted
            # value follows), so a browser drops all of it. We scan all of it as one text run,
            # so nothing hides in it, and never parse it again from the next `<`: re-parsing
            # from every `<` of `<a<a<a...` cost time quadratic in the body.
            length = len(source)
            self._add_text(source, lt, length)
            return length
        tag_end, hides = scanned
        name = start_tag.group(1).lower()
        if (
            hides
            and self._rendered
            and not self._xml
            and name not in _VOID_TAGS
            and len(self._hidden) < _MAX_HIDDEN_DEPTH
        ):
            # Hidden: its text is scanned on its own, and the run around reads it as nothing.
            self._hidden.append([name, 1, lt, self._run, self._at_break])
            self._run = None
            self._at_break = True
            return tag_end
        if self._hidden and name == self._hidden[-1][0] and name not in _VOID_TAGS:
            self._hidden[-1][1] += 1
        self._markup_unit(name, lt, tag_end)
        special = name in _RAW_TEXT_TAGS or name in _RCDATA_TAGS
        if special and not self._xml:
            closer = re.compile(rf"</{re.escape(name)}[\t\n\f\r />]", re.IGNORECASE).search(
                source, tag_end
            )
            content_end = len(source) if closer is None else closer.start()
            if self._rendered:
                self._content(source, name, tag_end, content_end)
                self._invisible(tag_end, content_end)
            else:
                self._flush()
                self._content(source, name, tag_end, content_end)
            return content_end
        return tag_end

    def _content(self, source: str, name: str, start: int, end: int) -> None:
        """The content of a raw-text or RCDATA element, as a segment of its own."""
        if name in _RAW_TEXT_TAGS:
            self._add_verbatim(source, start, end, "html_raw_text")
            return
        builder = TextMapBuilder(start)
        _add_decoded(builder, source, start, end)
        text, text_map = builder.build(end)
        if text:
            self._add_slot(text, text_map, _escape_text, self._field_name, "html_text")

    def _aside(self, source: str, lt: int, start: int, end: int, resume: int) -> int:
        """A comment, doctype, CDATA or processing instruction: its content is a segment of
        its own; the run reads it as nothing (rendered) or ends at it."""
        if self._rendered:
            self._add_verbatim(source, start, end, "html_comment")
            self._invisible(lt, resume)
        else:
            self._flush()
            self._add_verbatim(source, start, end, "html_comment")
        return resume

    def _closes_hidden(self, name: str) -> bool:
        top = self._hidden[-1]
        if name != top[0]:
            return False
        top[1] -= 1
        return top[1] == 0

    def _end_hidden(self, end: int) -> None:
        """Close the innermost hidden element at `end`: its run becomes segments; the run it
        interrupted goes on, reading the element as nothing."""
        self._flush()
        _name, _depth, start, run, at_break = self._hidden.pop()
        self._run, self._at_break = run, at_break
        self._invisible(start, end)
        self._trailing_break = False

    def _markup_unit(self, name: str, start: int, end: int) -> None:
        if name == "br":
            self._run_builder(start).unit("\n", start, end, markup=True)
            self._at_break = True
        elif not self._rendered:
            if name in _INLINE_TAGS:
                self._run_builder(start).unit("", start, end, markup=True)
            else:
                self._flush()
        elif self._xml or name in _BLOCK_TAGS:
            self._line_break(start, end)
        else:
            self._invisible(start, end)

    def _scan_attributes(self, source: str, pos: int) -> tuple[int, bool] | None:
        """Add a segment per attribute value; return (the index after `>`, whether the
        attributes hide the element), or None if the tag is unterminated (then no segment is
        added: its bytes are read as text)."""
        length = len(source)
        hides = False
        values: list[tuple[str, TextMap, Callable[[str], str], str]] = []
        while True:
            pos = _ATTR_GAP.match(source, pos).end()  # type: ignore[union-attr]
            if pos >= length:
                return None
            if source[pos] == ">":
                for text, text_map, escape, attr_name in values:
                    self._add_slot(text, text_map, escape, attr_name, "html_attr")
                return pos + 1, hides
            attribute = _ATTRIBUTE.match(source, pos)
            if attribute is None:  # defensive: the pattern matches any non-gap character
                return None
            name = attribute.group(1).lower()
            if name == "hidden":
                hides = True
            for group, escape in ((2, _escape_quoted), (3, _escape_quoted), (4, _escape_unquoted)):
                if attribute.group(group) is not None:
                    start, end = attribute.span(group)
                    builder = TextMapBuilder(start)
                    _add_decoded(builder, source, start, end)
                    text, text_map = builder.build(end)
                    if text:
                        values.append((text, text_map, escape, attribute.group(1)))
                        if name == "style" and _HIDING_STYLE.search(text):
                            hides = True
                    break
            pos = attribute.end()

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """Edits on the HTML source: markup inside a value stays. Raises ValueError for
        invalid edits."""
        mapped: list[Edit] = []
        for slot_id, local_edits in self._table.route(edits).items():
            slot = self._slots[slot_id]  # type: ignore[index]
            on_text = slot.view.source_edits(local_edits) if slot.view else local_edits[0]
            mapped.extend(
                map_edits(slot.text, slot.text_map, on_text, slot.escape, keep_markup=True)
            )
        mapped.sort(key=lambda e: (e.start, -e.end))
        result: list[Edit] = []
        for edit in mapped:
            # Defensive: an edit inside one already made (markup is kept, so none should be).
            if result and edit.end <= result[-1].end and edit.start < result[-1].end:
                continue
            result.append(edit)
        return result


# Markup whose content a rendered run may step over (comments, declarations, raw-text and
# RCDATA elements, elements a `hidden` attribute or a style hides): the screen leaves such
# text to HtmlView rather than follow its every rule.
# Asked of the lowered text (HtmlView lowers tag and attribute names), with `hidden` as a
# substring: searched from each `<` (a literal), not with a case-folding alternation.
_RAW_OR_ASIDE = re.compile(r"<(?:[!?]|script|style|xmp|noembed|noframes|textarea|title|plaintext)")


def _attribute_values(source: str, pos: int) -> tuple[int, list[str]] | None:
    """`HtmlView._scan_attributes` without the segments: (the index after the tag's `>`, the
    attribute values as written), or None if the tag is unterminated."""
    length = len(source)
    values: list[str] = []
    while True:
        pos = _ATTR_GAP.match(source, pos).end()  # type: ignore[union-attr]
        if pos >= length:
            return None
        if source[pos] == ">":
            return pos + 1, values
        attribute = _ATTRIBUTE.match(source, pos)
        if attribute is None:
            return None
        value = attribute.group(2)
        if value is None:
            value = attribute.group(3)
            if value is None:
                value = attribute.group(4)
        if value:
            values.append(value)
        pos = attribute.end()


def marked_text_runs(source: str, mark: str) -> tuple[str, list[str]] | None:
    """HtmlView's text runs and attribute values of `source`, for the JSON fast path's screen
    (json_prescan.py): (the text with `mark` in place of every tag, the attribute values),
    each piece of text and each value with its character references decoded as HtmlView
    decodes them. Between two marks the text is exactly what HtmlView's run holds there (a
    tag reads as nothing or a line break, and whitespace right after a line break as
    nothing: only where a mark is). None for markup whose content a run may step over (the
    screen leaves such text to HtmlView rather than follow its every rule), a style that could
    hide an element, and an unterminated tag."""
    lower = source.lower()
    if "hidden" in lower or _RAW_OR_ASIDE.search(lower) is not None:
        return None
    if "style" in lower and ("&" in source or _HIDING_STYLE.search(source)):
        return None
    wanted: list[int] = []

    def tag(match: re.Match[str]) -> str:
        attributes = match.group(1)
        if attributes and _MAY_FEED_A_VALUE.search(attributes) is not None:
            wanted.append(match.start(1))
        return mark

    marked = _ANY_TAG.sub(tag, source)
    if _UNREAD_TAG.search(marked) is not None:
        # A tag HtmlView does not end where the pattern could (an unterminated one: the rest
        # is text to HtmlView), or a bogus end tag (read as a comment).
        return None
    values: list[str] = []
    for at in wanted:
        scanned = _attribute_values(source, at)
        if scanned is None:  # defensive: the pattern matched this tag whole
            return None
        values.extend(scanned[1])
    if "&" in source:
        return _decode_references(marked), [_decode_references(v) for v in values]
    return marked, values


# A tag as HtmlView reads it, whole: an end tag (`_END_TAG`), or a start tag with its
# attributes (group 1) as `_scan_attributes` walks them (`_ATTR_GAP`, `_ATTRIBUTE`), each
# step taken once, never given back, so the match ends where HtmlView's walk does.
_ANY_TAG = re.compile(
    r"</[A-Za-z][^\t\n\f\r />]*[^>]*>"
    r"|<[A-Za-z][^\t\n\f\r />]*+"
    r"((?:[\t\n\f\r /]*+(?>[^\t\n\f\r />][^\t\n\f\r /=>]*"
    r"""(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"[^"]*"|'[^']*'|[^\t\n\f\r >]*))?))*+)"""
    r"[\t\n\f\r /]*+>"
)
# Left after every tag is marked: a start or end tag HtmlView reads otherwise.
_UNREAD_TAG = re.compile(r"<[A-Za-z/]")
# Attributes whose values may give the screen something to read: digits (of any script), a
# reference (that may decode to one), a percent escape, a backslash.
_MAY_FEED_A_VALUE = re.compile(r"[0-9&%\\]|[^\x00-\x7f]")


def _decode_references(text: str) -> str:
    # As `_add_decoded` reads them: a reference that decodes to itself stays as written.
    return _CHARREF.sub(lambda m: _unescape_reference(m.group()), text) if "&" in text else text


def parse_html(body: bytes, charset: str | None = None) -> TextBody:
    """Parse an HTML body. Raises BodyUnparseableError for bytes invalid in a declared charset."""
    text, codec, errors = decode_text(body, charset)
    return TextBody(body, text, codec, errors, HtmlView(text, "body"))


# The encoding an XML declaration names, when the Content-Type does not (RFC 7303 section 3).
_XML_ENCODING = re.compile(rb"""\A<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']""")


def parse_xml(body: bytes, charset: str | None = None) -> TextBody:
    """Parse an XML body: text and attribute values with character references decoded, every
    element boundary a line break. Raises BodyUnparseableError for bytes invalid in the
    declared charset (the Content-Type's, else the XML declaration's)."""
    if charset is None:
        declared = _XML_ENCODING.match(body[:256])
        if declared is not None and declared.group(1).lower() not in (b"utf-16", b"utf-32"):
            charset = declared.group(1).decode("ascii")
    text, codec, errors = decode_text(body, charset)
    if not reads_as_text(text):
        # Not text (a binary file labelled XML): scanned as the bytes it is, nothing decoded.
        return TextBody(body, text, codec, errors, PlainView(text, "body", "text"))
    return TextBody(body, text, codec, errors, HtmlView(text, "body", xml=True))
