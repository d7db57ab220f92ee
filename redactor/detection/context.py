"""Words around a candidate: what they say the number is.

Read from the clause the number stands in (a clause ends at a sentence end or a line break):
- card / SSN words in the clause before the number (`my credit card is ...`, `SSN: ...`);
- the label in front (`Tracking: `, `routing number `, `passport no. `, `注文番号`): what kind it
  names, and whether it is attached to the number (only `number`, `is`, `#`, `no.` and
  punctuation between, and not `over the phone`): a card or SSN word in the clause outweighs
  an unattached one;
- words of another kind anywhere in the clause (`call me at ... after 5pm`, `order ... shipped`);
- words that call the number invalid or a test value (`is not accepted`, `invalid card`).
The words themselves are data (`words.py`); `evidence.py` weighs what is read here.

Presidio's own context enhancer needs spaCy tokens and lemmas; redactor runs without an NLP
model, so the recognizers read context here instead.
"""

from __future__ import annotations

import functools
import itertools
import re

from redactor.detection import words

CARD_LABEL = "card"
SSN_LABEL = "ssn"
# Another identifier's label: a card or an SSN is ruled out.
OTHER_LABEL = "other"
# An account's label: an SSN is ruled out, a card (a primary account number) is not.
ACCOUNT_LABEL = "account"

_PHRASES: dict[tuple[str, str], str] = {
    **dict.fromkeys(words.CARD_PHRASES, CARD_LABEL),
    **dict.fromkeys(words.SSN_PHRASES, SSN_LABEL),
}
_PHRASE_FIRST = frozenset(first for first, _ in _PHRASES)
_PHRASE_SECOND = frozenset(second for _, second in _PHRASES)
_SUPPORTS_CARD = words.CARD | words.PAYMENT
_OTHER_CONTEXT = words.OTHER_ID | words.PHONE
# Words: letters with inner apostrophes or hyphens and an optional trailing `#` (`cc#`,
# `driver's`, `ust-idnr`, `w-9`); a lone `#` too, for `ss #`. Digits end a word, so `exp0528`
# reads `exp`. Matched with findall (one C call) and compared as sets: the context of every
# candidate is read, so this is on the hot path.
# Latin letters as explicit ranges: the Unicode letter category costs several times more per
# character, and every Latin keyword is in these ranges.
_LETTER = "a-z\u00df-\u00ff\u0100-\u024f"
_WORD = re.compile(f"[{_LETTER}]+(?:['-][{_LETTER}0-9]+)*#?|#")
# What may stand between a label and its number: punctuation and small words.
_FILLER_WORDS = words.FILLER
_FILLER = re.compile(
    r"(?:[\s:#=\-–(),.'\"/\[\]°º：]+|(?:[" + _LETTER + r"]+))*",
    re.IGNORECASE,
)
# A clause ends at a sentence end or a line break. Greedy: one match from the start reaches
# the last clause end.
_UP_TO_LAST_CLAUSE_END = re.compile(r".*(?:[.!?;]\s|[。！？]|\n)", re.DOTALL)
# The dot of an abbreviated label (`Tel. `, `No. `, `Ref. `) does not end a sentence: matched
# on the few characters before a clause end.
_ABBREVIATION_END = re.compile(
    r"(?:\A|[^a-zß-ÿ])(?:" + "|".join(map(re.escape, words.ABBREVIATIONS)) + r")\.\s\Z"
)
_CLAUSE_END = re.compile(r"[.!?;](?:\s|\Z)|[。！？]|\n")
# Japanese text between a label and its number: spaces, colons, particles, brackets.
_JA_FILLER = " \u3000:：#＃はの「『(（"

BEFORE_CHARS = 64
AFTER_CHARS = 40


def _phrases(ws: list[str]) -> set[str]:
    """Kinds of the two-word keywords in `ws` (`social security`, `seguro social`)."""
    if _PHRASE_FIRST.isdisjoint(ws) or _PHRASE_SECOND.isdisjoint(ws):
        return set()
    return {kind for pair in itertools.pairwise(ws) if (kind := _PHRASES.get(pair))}


def _kind_of(word: str) -> str | None:
    if word in words.CARD:
        return CARD_LABEL
    if word in words.SSN:
        return SSN_LABEL
    if word in words.OTHER_ID:
        return OTHER_LABEL
    if word in words.NOT_SSN_ONLY:
        return ACCOUNT_LABEL
    return None


def _label(clause: str, clause_words: list[str]) -> tuple[str | None, bool, str | None]:
    """The kind the label in front of the number names, if any, whether it is attached to
    the number (only punctuation and `number`, `is`, `#`, `no.` and their kin between, and not a
    phone word naming how the number was given: `over the phone: ...`), and the label's word."""
    if not clause.isascii():
        ja = _ja_label(clause)
        if ja is not None:
            return ja[0], True, ja[1]
    nonfiller = [w for w in clause_words if w not in _FILLER_WORDS and len(w) > 2]
    if not nonfiller:
        return None, False, None
    last = nonfiller[-1]
    kind = _kind_of(last)
    if kind is None:
        if len(nonfiller) >= 2 and _PHRASES.get((nonfiller[-2], last)):
            return _PHRASES[(nonfiller[-2], last)], True, last
        return None, False, None
    # Only filler words (by construction: `last` is the last other word) and punctuation may
    # stand between the label and the number: not `$`, `@` or digits.
    label_end = clause.rfind(last) + len(last)
    if _FILLER.fullmatch(clause, label_end) is None:
        return None, False, None
    attached = words.ATTACHING.issuperset(_WORD.findall(clause, label_end)) and not _channel(
        clause_words, last
    )
    if kind == ACCOUNT_LABEL and len(nonfiller) >= 2 and _kind_of(nonfiller[-2]) == CARD_LABEL:
        # `credit card account 4111 ...`: the account is a card's.
        return CARD_LABEL, attached, last
    return kind, attached, last


def _channel(clause_words: list[str], label: str) -> bool:
    """`label` is a phone word after a preposition (`over the phone`, `by fax`): it says how the
    number was given, not what it is."""
    if label not in words.PHONE:
        return False
    at = len(clause_words) - 1 - clause_words[::-1].index(label)
    before = [w for w in clause_words[:at] if w not in words.ARTICLES]
    return bool(before) and before[-1] in words.CHANNEL_PREPOSITIONS


def _ja_label(clause: str) -> tuple[str, str] | None:
    stripped = clause.rstrip(_JA_FILLER)
    for kind, labels in (
        (CARD_LABEL, words.JA_CARD),
        (SSN_LABEL, words.JA_SSN),
        (OTHER_LABEL, words.JA_OTHER),
    ):
        for label in labels:
            if stripped.endswith(label):
                return kind, label
    return None


def _has_ja(text: str, labels: tuple[str, ...]) -> bool:
    return any(label in text for label in labels)


class Context:
    """What the words around the candidate at [start, end) of a text say about it.

    Read lazily, once per question: a well-formed card in a scheme's grouping only needs to
    know whether a card word is anywhere near (its score), not what its clause holds, and this
    runs for every candidate of every message.
    """

    __slots__ = (
        "_after",
        "_after_clause",
        "_attached",
        "_before",
        "_clause",
        "_label",
        "_label_word",
        "_near",
    )

    def __init__(self, text: str, start: int, end: int, field_name: str | None) -> None:
        before = text[max(0, start - BEFORE_CHARS) : start].lower()
        if field_name and start < BEFORE_CHARS:
            before = field_name.lower().replace("_", " ").replace("-", " ") + ": " + before
        self._before = before
        self._after = text[end : end + AFTER_CHARS].lower()
        self._near: tuple[list[str], set[str]] | None = None
        self._clause: tuple[str, list[str]] | None = None
        self._after_clause: tuple[str, list[str]] | None = None
        self._label: str | bool | None = False  # False: not read yet
        self._attached = False
        self._label_word: str | None = None

    def _near_words(self) -> tuple[list[str], set[str]]:
        # Every word of the window, whatever its clause: what raises a score.
        if self._near is None:
            ws = _WORD.findall(f"{self._before} {self._after}")
            self._near = (ws, _phrases(ws))
        return self._near

    def _clause_words(self) -> tuple[str, list[str]]:
        # The clause before the number, and its words.
        if self._clause is None:
            before = self._before
            m = _UP_TO_LAST_CLAUSE_END.match(before)
            while (
                m is not None
                and before[m.end() - 2] == "."
                and _ABBREVIATION_END.search(before, max(0, m.end() - 7), m.end())
            ):
                # `Tel. 536904399`: the label's dot; the clause goes on before it.
                m = _UP_TO_LAST_CLAUSE_END.match(before, 0, m.end() - 2)
            clause = before[m.end() :] if m else before
            self._clause = (clause, _WORD.findall(clause))
        return self._clause

    def _after_clause_words(self) -> tuple[str, list[str]]:
        # The rest of the clause after the number, and its words.
        if self._after_clause is None:
            stop = _CLAUSE_END.search(self._after)
            after_clause = self._after[: stop.start()] if stop else self._after
            self._after_clause = (after_clause, _WORD.findall(after_clause))
        return self._after_clause

    @property
    def supports_card(self) -> bool:
        """A card word or payment verb anywhere around: raises a card's score."""
        if self._clause is not None and (self.card_word_in_clause or self.payment_word_in_clause):
            return True  # the clause, already read, answers without reading the window
        ws, kinds = self._near_words()
        if not _SUPPORTS_CARD.isdisjoint(ws) or CARD_LABEL in kinds:
            return True
        return not self._before.isascii() and _has_ja(self._before, words.JA_CARD)

    @property
    def supports_ssn(self) -> bool:
        """An SSN word anywhere around."""
        if self._clause is not None and self.ssn_word_in_clause:
            return True  # the clause, already read, answers without reading the window
        ws, kinds = self._near_words()
        if not words.SSN.isdisjoint(ws) or SSN_LABEL in kinds:
            return True
        return not self._before.isascii() and _has_ja(self._before, words.JA_SSN)

    @property
    def card_word_in_clause(self) -> bool:
        """A card word (not a payment verb) in the same clause, before the number."""
        clause, ws = self._clause_words()
        if not words.CARD.isdisjoint(ws) or CARD_LABEL in _phrases(ws):
            return True
        return not clause.isascii() and _has_ja(clause, words.JA_CARD)

    @property
    def payment_word_in_clause(self) -> bool:
        """A payment verb (`paid`, `payment`, `charge`) in the same clause, before the number."""
        clause, ws = self._clause_words()
        if not words.PAYMENT.isdisjoint(ws):
            return True
        return not clause.isascii() and _has_ja(clause, words.JA_PAYMENT)

    @property
    def ssn_word_in_clause(self) -> bool:
        """An SSN word in the same clause, before the number."""
        clause, ws = self._clause_words()
        if not words.SSN.isdisjoint(ws) or SSN_LABEL in _phrases(ws):
            return True
        return not clause.isascii() and _has_ja(clause, words.JA_SSN)

    @property
    def label(self) -> str | None:
        """What the label directly in front names: CARD_LABEL, SSN_LABEL, OTHER_LABEL,
        ACCOUNT_LABEL or None."""
        if self._label is False:
            clause, ws = self._clause_words()
            self._label, self._attached, self._label_word = _label(clause, ws)
        return self._label  # type: ignore[return-value]

    @property
    def label_attached(self) -> bool:
        """The label in front is attached to the number (see `_label`)."""
        return self.label is not None and self._attached

    def label_fits(self, digit_count: int) -> bool:
        """The label in front names an identifier with a structure of its own that an
        all-digit number of `digit_count` digits fits (an IMEI, a phone number: see
        `words.STRUCTURED_ID_DIGITS`); False for a generic label (order, ticket, id, ...)."""
        fits = words.STRUCTURED_ID_DIGITS.get(self._label_word or "") if self.label else None
        return fits is not None and digit_count in fits

    @property
    def other_label(self) -> bool:
        return self.label == OTHER_LABEL

    @property
    def rules_out_card(self) -> bool:
        """Another identifier's label in front that a card word does not outweigh: attached
        to the number, or unattached with no card word in the clause."""
        return self.label == OTHER_LABEL and (self._attached or not self.card_word_in_clause)

    @property
    def rules_out_ssn(self) -> bool:
        """Another identifier's or an account's label in front that an SSN word does not
        outweigh: attached to the number, or unattached with no SSN word in the clause."""
        return self.label in (OTHER_LABEL, ACCOUNT_LABEL) and (
            self._attached or not self.ssn_word_in_clause
        )

    @property
    def other_in_clause(self) -> bool:
        """A word of another identifier or of phone context anywhere in the clause."""
        clause, ws = self._clause_words()
        after_clause, after_ws = self._after_clause_words()
        if not _OTHER_CONTEXT.isdisjoint(ws) or not _OTHER_CONTEXT.isdisjoint(after_ws):
            return True
        return not (clause.isascii() and after_clause.isascii()) and _has_ja(
            clause + " " + after_clause, words.JA_OTHER
        )

    @property
    def called_invalid(self) -> bool:
        """The clause calls the number invalid or a test value."""
        clause, ws = self._clause_words()
        after_clause, after_ws = self._after_clause_words()
        if not words.INVALID.isdisjoint(ws) or not words.INVALID.isdisjoint(after_ws):
            return True
        return not (clause.isascii() and after_clause.isascii()) and _has_ja(
            clause + " " + after_clause, words.JA_INVALID
        )


def _name_words(field_name: str) -> list[str]:
    # `cc_first8`, `card-part1`, `ssnArea`: words as in text; digits and case changes end one.
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", field_name).lower()
    return _WORD.findall(spaced.replace("_", " ").replace("-", " "))


@functools.lru_cache(maxsize=4096)
def names_kind(field_name: str | None) -> str | None:
    """CARD_LABEL for a field name that names a card (`cc1`, `card_number`, `cc_first8`,
    `pan`), SSN_LABEL for one that names an SSN (`ssn1`, `social_security_area`), else None.
    Cached: a route sees the same few field names in every message."""
    if not field_name:
        return None
    ws = _name_words(field_name)
    kinds = _phrases(ws)
    if not (words.CARD.isdisjoint(ws) and words.CARD_FIELD_NAMES.isdisjoint(ws)):
        return CARD_LABEL
    if CARD_LABEL in kinds:
        return CARD_LABEL
    if not (words.SSN.isdisjoint(ws) and words.SSN_FIELD_NAMES.isdisjoint(ws)):
        return SSN_LABEL
    return SSN_LABEL if SSN_LABEL in kinds else None


def read_context(text: str, start: int, end: int, *, field_name: str | None = None) -> Context:
    """Context evidence for the candidate at [start, end) of `text`.

    `field_name` (a JSON key, form field or header name) counts as a label written just before
    the text, so `{"tracking_number": "..."}` reads like `tracking number: ...`.
    """
    return Context(text, start, end, field_name)
