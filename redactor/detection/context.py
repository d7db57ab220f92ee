"""Words around a candidate that make it more or less likely to be a card number or an SSN.

Two kinds of evidence, both read from the same clause as the number:
- supporting words (`card`, `visa`, `exp`, `tarjeta`; `ssn`, `social security`) raise the
  score; their absence never drops a well-formed card;
- a label of another identifier directly in front of the number (`Tracking: `, `routing
  number `, `IBAN `, `passport: `, `USt-IdNr DE `) says what the number is, and suppresses it,
  unless a supporting word sits in the same clause (`credit card account 4111 ...`).

Presidio's own context enhancer needs spaCy tokens and lemmas; redactor runs without an NLP
model, so the recognizers read context here instead.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

# Keywords as data: one word (lowercase) or two consecutive words, and what they are.
CARD_WORDS = frozenset(
    "card cards credit debit visa mastercard mc amex discover diners jcb unionpay maestro rupay "
    "hipercard cc cc# ccn cvv cvv2 cvc cvc2 exp expiry expires expiration tarjeta carte karte "
    "kreditkarte cartão cartao carta kaart kort karta".split()
)
CARD_PHRASES = frozenset({("master", "card"), ("american", "express"), ("union", "pay")})
# Payment verbs raise a card's score but are too common to overrule another identifier's label
# ("tracking for my refund: ...").
PAYMENT_WORDS = frozenset("billing charge charged paid payment pay refund".split())
SSN_WORDS = frozenset("ssn ssns ss# social ssa itin irs taxpayer w-9 w-2".split())
SSN_PHRASES = frozenset(
    {("social", "security"), ("soc", "sec"), ("ss", "#"), ("ss", "no"), ("tax", "id")}
)
# Labels of identifiers that are neither: couriers, banks, phones, orders, other countries' ids.
OTHER_ID_WORDS = frozenset(
    "tracking track shipment parcel package consignment waybill awb order invoice receipt ref "
    "reference ticket case conversation iban bic swift routing aba rtn account acct phone tel "
    "telephone fax mobile cell whatsapp passport license licence driver driver's drivers vat "
    "ust ust-idnr idnr ustid steuernummer steuer-id tin ein npi nhs sin tfn medicare aadhaar "
    "isbn issn imei meid serial sku upc ean gtin confirmation booking pnr reservation claim "
    "transaction txn zip postal postcode member policy employee student tckn cpf cnpj nino mrn "
    "patient id identity national customer user uid guid uuid version".split()
)

_SUPPORTS_CARD = CARD_WORDS | PAYMENT_WORDS
_STRONG = CARD_WORDS | SSN_WORDS
_PHRASES: dict[tuple[str, str], str] = {
    **dict.fromkeys(CARD_PHRASES, "card"),
    **dict.fromkeys(SSN_PHRASES, "ssn"),
}
_PHRASE_FIRST = frozenset(first for first, _ in _PHRASES)
# Words: letters with inner apostrophes or hyphens and an optional trailing `#` (`cc#`,
# `driver's`, `ust-idnr`, `w-9`); a lone `#` too, for `ss #`. Digits end a word, so `exp0528`
# reads `exp`. Matched with findall (one C call) and compared as sets: the context of every
# candidate is read, so this is on the hot path.
# Latin letters as explicit ranges: the Unicode letter category costs several times more per
# character, and every keyword is Latin-script.
_LETTER = "a-z\u00df-\u00ff\u0100-\u024f"
_WORD = re.compile(f"[{_LETTER}]+(?:['-][{_LETTER}0-9]+)*#?|#")
# Small words that may stand between a label and its number ("number", "is", "no", "DE").
_FILLER_WORDS = frozenset(
    "number numbers num no nr nro is was are of the my your our for code ending in on".split()
)

# What may stand between a label and its number: punctuation and small words ("number", "is",
# "no.", "#", a country code such as "DE").
_FILLER = re.compile(
    r"(?:[\s:#=\-–(),.'\"/\[\]]+|(?:numbers?|num|no|nr|nro|n°|nº|is|was|are|of|the|my|your|our|"
    r"for|code|ending|in|on|[a-z]{1,2})(?![a-z]))*",
    re.IGNORECASE,
)
# A clause ends at a sentence end or a line break: context does not cross it for labels.
# Greedy: one match from the start reaches the last clause end.
_UP_TO_LAST_CLAUSE_END = re.compile(r".*(?:[.!?;]\s|\n)", re.DOTALL)

BEFORE_CHARS = 64
AFTER_CHARS = 32


@dataclass(frozen=True, slots=True)
class Context:
    supports_card: bool
    supports_ssn: bool
    other_label: bool
    # A card word (not a payment verb) in the same clause, before the number.
    card_word_in_clause: bool = False


def _phrases(words: list[str]) -> set[str]:
    """Kinds of the two-word keywords in `words` (`social security`, `tax id`)."""
    if _PHRASE_FIRST.isdisjoint(words):
        return set()
    return {kind for pair in itertools.pairwise(words) if (kind := _PHRASES.get(pair))}


def read_context(text: str, start: int, end: int, *, field_name: str | None = None) -> Context:
    """Context evidence for the candidate at [start, end) of `text`.

    `field_name` (a JSON key, form field or header name) counts as a label written just before
    the text, so `{"tracking_number": "..."}` reads like `tracking number: ...`.
    """
    before = text[max(0, start - BEFORE_CHARS) : start].lower()
    if field_name and start < BEFORE_CHARS:
        before = field_name.lower().replace("_", " ").replace("-", " ") + ": " + before
    m = _UP_TO_LAST_CLAUSE_END.match(before)
    clause = before[m.end() :] if m else before
    clause_words = _WORD.findall(clause)
    words = clause_words + _WORD.findall(text[end : end + AFTER_CHARS].lower())
    if m:
        words += _WORD.findall(before, 0, m.end())
    phrase_kinds = _phrases(words)
    supports_card = not _SUPPORTS_CARD.isdisjoint(words) or "card" in phrase_kinds
    supports_ssn = not SSN_WORDS.isdisjoint(words) or "ssn" in phrase_kinds

    clause_phrases = _phrases(clause_words)
    card_in_clause = not CARD_WORDS.isdisjoint(clause_words) or "card" in clause_phrases
    strong_in_clause = not _STRONG.isdisjoint(clause_words) or bool(clause_phrases)
    other_label = False
    if not strong_in_clause:
        # The last word that is not filler: a label of another identifier directly in front
        # says what the number is, when only filler stands between ("Tracking #: ...").
        for word in reversed(clause_words):
            if word in _FILLER_WORDS or len(word) <= 2:
                continue
            if word in OTHER_ID_WORDS:
                label_end = clause.rfind(word) + len(word)
                other_label = _FILLER.fullmatch(clause, label_end) is not None
            break
    return Context(supports_card, supports_ssn, other_label, card_in_clause)
