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

import re
from dataclasses import dataclass

CARD_WORDS = (
    r"cards?|credit|debit|visa|master\s?card|mc|amex|american\s+express|discover|diners|jcb|"
    r"union\s?pay|maestro|rupay|hipercard|cc|ccn|cc#|cvv2?|cvc2?|exp|expiry|expires|expiration|"
    r"tarjeta|carte|karte|kreditkarte|cart[aã]o|carta|kaart|kort|karta"
)
# Payment verbs raise a card's score but are too common to overrule another identifier's label
# ("tracking for my refund: ...").
PAYMENT_WORDS = r"billing|charged?|paid|payment|pay|refund"
SSN_WORDS = (
    r"ssns?|ss\s?#|ss\s?no|social(?:\s+security)?|soc\.?\s*sec|seguro\s+social|ssa|itin|"
    r"w-?9|w-?2|irs|taxpayer|tax\s+id"
)
# Labels of identifiers that are neither: couriers, banks, phones, orders, other countries' ids.
OTHER_ID_WORDS = (
    r"tracking|track|shipment|parcel|package|consignment|waybill|awb|order|invoice|receipt|ref|"
    r"reference|ticket|case|conversation|iban|bic|swift|routing|aba|rtn|account|acct|phone|tel|"
    r"telephone|fax|mobile|cell|whatsapp|passport|licen[cs]e|driver'?s?|vat|ust|ust-?idnr|idnr|"
    r"steuernummer|steuer-?id|tin|ein|npi|nhs|sin|tfn|medicare|aadhaar|isbn|issn|imei|meid|"
    r"serial|sku|upc|ean|gtin|confirmation|booking|pnr|reservation|claim|transaction|txn|zip|"
    r"postal|postcode|member|policy|employee|student|tckn|cpf|cnpj|nino|mrn|patient|id|identity|"
    r"national|customer|user|uid|guid|uuid|version"
)

_CARD = re.compile(rf"(?<![a-z0-9])(?:{CARD_WORDS})(?![a-z])", re.IGNORECASE)
_PAYMENT = re.compile(rf"(?<![a-z0-9])(?:{PAYMENT_WORDS})(?![a-z])", re.IGNORECASE)
_SSN = re.compile(rf"(?<![a-z0-9])(?:{SSN_WORDS})(?![a-z])", re.IGNORECASE)
_OTHER = re.compile(rf"(?<![a-z0-9])(?:{OTHER_ID_WORDS})(?![a-z])", re.IGNORECASE)
# What may stand between a label and its number: punctuation and small words ("number", "is",
# "no.", "#", a country code such as "DE").
_FILLER = re.compile(
    r"(?:[\s:#=\-–(),.'\"/\[\]]+|(?:numbers?|num|no|nr|nro|n°|nº|is|was|are|of|the|my|your|our|"
    r"for|code|ending|in|on|[a-z]{1,2})(?![a-z]))*",
    re.IGNORECASE,
)
# A clause ends at a sentence end or a line break: context does not cross it for labels.
_CLAUSE_END = re.compile(r"[.!?;]\s|\n")

BEFORE_CHARS = 64
AFTER_CHARS = 32


@dataclass(frozen=True, slots=True)
class Context:
    supports_card: bool
    supports_ssn: bool
    other_label: bool


def _clause_before(before: str) -> str:
    last = None
    for m in _CLAUSE_END.finditer(before):
        last = m
    return before if last is None else before[last.end() :]


def _label_directly_before(clause: str) -> bool:
    last = None
    for m in _OTHER.finditer(clause):
        last = m
    if last is None:
        return False
    between = clause[last.end() :]
    return _FILLER.fullmatch(between) is not None


def read_context(text: str, start: int, end: int, *, field_name: str | None = None) -> Context:
    """Context evidence for the candidate at [start, end) of `text`.

    `field_name` (a JSON key, form field or header name) counts as a label written just before
    the text, so `{"tracking_number": "..."}` reads like `tracking number: ...`.
    """
    before = text[max(0, start - BEFORE_CHARS) : start]
    if field_name and start < BEFORE_CHARS:
        before = field_name.replace("_", " ").replace("-", " ") + ": " + before
    after = text[end : end + AFTER_CHARS]
    window = before + " " + after
    clause = _clause_before(before)
    supports_card = _CARD.search(window) is not None or _PAYMENT.search(window) is not None
    supports_ssn = _SSN.search(window) is not None
    in_clause_support = _CARD.search(clause) is not None or _SSN.search(clause) is not None
    other_label = not in_clause_support and _label_directly_before(clause)
    return Context(supports_card, supports_ssn, other_label)
