"""A seeded generator of realistic labelled support messages, built from the labelling rules.

Every message is a chat line, an e-mail with quoted history and a signature, or a helpdesk note
with ticket links, in one of eight languages, and carries card numbers, SSNs or look-alikes of
the issue's classes (issue 10), each with its label:

- cards of every scheme, length and grouping (standard, pairs, singles, 4-12, 6-10, 2-3-7-3, odd
  spacing, line breaks, mixed), in ASCII, full-width and other Unicode digits; with expiry/CVV
  tails (`03-2027`, `3-27`, `03/27`), card words glued on (`cc4111...`, `...1111exp06/27`),
  invisible format characters between digits, literal escapes (`card:\\n4111 ...`,
  `\\u0435 4111 ...`), Luhn-valid numbers outside the IIN table with card evidence, and
  Luhn-failing numbers right after a card word (positives: a typo'd card is still a card);
- SSNs with separators (alone) and bare with an SSN word;
- look-alikes: numeric ids in URL paths, 9-digit numbers after another identifier's label or in
  phone context (CUSIP, ABA, EIN, SIN/NAS, Teudat Zehut, passports, orders, invoices, tickets,
  tracking), 19-digit card-shaped numbers that are not cards, IMEIs, ICCIDs, IBANs, courier
  numbers, barcodes, timestamps and phone numbers of many countries, and Luhn-failing numbers
  the text calls invalid.

The labels follow tests/data/eval/README.md, never the dev strings. Pure: `generate(n, seed)`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.factories import luhn_break_last, luhn_check_digit, make_pan, make_ssn

CARD = "CREDIT_CARD"
SSN = "US_SSN"

LANGS = ("en", "es", "fr", "de", "pt", "it", "nl", "ja")


@dataclass
class Message:
    text: str
    # (entity, exact substring of text, start): what a detector must report, nothing more.
    expected: list[tuple[str, str, int]]
    kinds: list[str] = field(default_factory=list)
    lang: str = "en"


class _Builder:
    """Appends text pieces and records where the labelled values land."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.expected: list[tuple[str, str, int]] = []

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.size += len(s)

    def value(self, entity: str | None, s: str) -> None:
        if entity is not None:
            self.expected.append((entity, s, self.size))
        self.add(s)

    def text(self) -> str:
        return "".join(self.parts)


# --- words, per language -----------------------------------------------------------------------

GREETING = {
    "en": ["Hi,", "Hello team,", "Hey there!", "Good morning,"],
    "es": ["Hola,", "Buenos días,", "Hola equipo,"],
    "fr": ["Bonjour,", "Salut,", "Bonjour l'équipe,"],
    "de": ["Hallo,", "Guten Tag,", "Hallo zusammen,"],
    "pt": ["Olá,", "Bom dia,", "Oi,"],
    "it": ["Ciao,", "Buongiorno,", "Salve,"],
    "nl": ["Hallo,", "Goedemorgen,", "Hoi,"],
    "ja": ["こんにちは。", "お世話になっております。"],
}
FILLER = {
    "en": [
        "Thanks for getting back to me.",
        "I have been waiting for two days now.",
        "Can you please have a look?",
        "Let me know if you need anything else.",
    ],
    "es": ["Gracias por su ayuda.", "Llevo dos días esperando.", "¿Pueden revisarlo?"],
    "fr": ["Merci de votre aide.", "J'attends depuis deux jours.", "Pouvez-vous vérifier ?"],
    "de": ["Danke für Ihre Hilfe.", "Ich warte seit zwei Tagen.", "Können Sie das prüfen?"],
    "pt": ["Obrigado pela ajuda.", "Estou esperando há dois dias.", "Podem verificar?"],
    "it": ["Grazie per l'aiuto.", "Aspetto da due giorni.", "Potete controllare?"],
    "nl": ["Bedankt voor de hulp.", "Ik wacht al twee dagen.", "Kunnen jullie kijken?"],
    "ja": ["よろしくお願いします。", "二日間待っています。", "確認していただけますか。"],
}
# Sentences that name the card; `{}` is the number.
CARD_SENTENCES = {
    "en": [
        "My card number is {}.",
        "Please charge my Visa {} for the renewal.",
        "The credit card I used was {}, can you check?",
        "card: {}",
        "I paid with my Mastercard {} yesterday.",
        "Here is the card {} as requested.",
        "CC {} exp soon.",
    ],
    "es": [
        "Mi tarjeta es {}.",
        "El número de mi tarjeta de crédito es {}.",
        "Pagué con la tarjeta {} ayer.",
    ],
    "fr": [
        "Mon numéro de carte est {}.",
        "J'ai payé avec ma carte bancaire {} hier.",
        "Carte de crédit : {}",
    ],
    "de": [
        "Meine Kreditkartennummer ist {}.",
        "Ich habe mit der Karte {} bezahlt.",
        "Kartennummer: {}",
    ],
    "pt": [
        "O número do meu cartão é {}.",
        "Paguei com o cartão de crédito {} ontem.",
        "Cartão: {}",
    ],
    "it": [
        "Il numero della mia carta è {}.",
        "Ho pagato con la carta di credito {} ieri.",
        "Carta: {}",
    ],
    "nl": [
        "Mijn kaartnummer is {}.",
        "Ik heb betaald met creditcard {} gisteren.",
        "Creditcard: {}",
    ],
    "ja": ["カード番号は{}です。", "クレジットカード {} で支払いました。", "カード番号：{}"],
}
# Sentences with no word at all about what the number is.
NEUTRAL_SENTENCES = {
    "en": ["Here it is: {}", "It's {} if that helps.", "Use {} please."],
    "es": ["Aquí está: {}", "Es {} por si ayuda."],
    "fr": ["Le voici : {}", "C'est {} si ça aide."],
    "de": ["Hier ist sie: {}", "Es ist {}, falls das hilft."],
    "pt": ["Aqui está: {}", "É {} se ajudar."],
    "it": ["Eccolo: {}", "È {} se aiuta."],
    "nl": ["Hier is het: {}", "Het is {} als dat helpt."],
    "ja": ["こちらです：{}", "{} です。"],
}
SSN_SENTENCES = {
    "en": ["My SSN is {}.", "social security number: {}", "SSN {} for the tax form."],
    "es": ["Mi número de seguro social (SSN) es {}.", "SSN: {}"],
    "fr": ["Mon numéro de sécurité sociale américain (SSN) est {}.", "SSN : {}"],
    "de": ["Meine US-Sozialversicherungsnummer (SSN) lautet {}.", "SSN: {}"],
    "pt": ["Meu número de seguro social (SSN) é {}.", "SSN: {}"],
    "it": ["Il mio numero di previdenza sociale (SSN) è {}.", "SSN: {}"],
    "nl": ["Mijn social security number is {}.", "SSN: {}"],
    "ja": ["SSN（社会保障番号）は{}です。", "SSN: {}"],
}
# A payment verb before the number: with a scheme's printed grouping, a typo'd card too.
PAYMENT_SENTENCES = {
    "en": ["I paid with {} yesterday.", "The payment with {} failed twice."],
    "es": ["Pagué con {} ayer."],
    "fr": ["J'ai payé avec {} hier."],
    "de": ["Die Zahlung mit {} ist fehlgeschlagen."],
    "pt": ["Paguei com {} ontem."],
    "it": ["Ho pagato con {} ieri."],
    "nl": ["Ik heb betaald met {} gisteren."],
    "ja": ["支払いに使ったのは {} です。"],
}
# Luhn-failing numbers the text itself calls invalid or a test value: negatives.
INVALID_SENTENCES = {
    "en": ["My card {} is not accepted on your site, why?", "Is {} an invalid card number?"],
    "es": ["La tarjeta {} no es válida, ¿por qué?"],
    "fr": ["La carte {} est invalide, pourquoi ?"],
    "de": ["Die Karte {} ist ungültig, warum?"],
    "pt": ["O cartão {} é inválido, por quê?"],
    "it": ["La carta {} non è valida, perché?"],
    "nl": ["De kaart {} is ongeldig, waarom?"],
    "ja": ["カード {} は無効です。"],
}
# Another identifier's label in front of a 9-digit number: (language, sentence).
OTHER_ID_SENTENCES = {
    "en": [
        "CUSIP {}",
        "routing number {}",
        "ABA: {}",
        "EIN {}",
        "SIN: {}",
        "Teudat Zehut {}",
        "passport no. {}",
        "Order #{} has not arrived.",
        "invoice {} is overdue",
        "ticket {} was closed",
        "tracking number {}",
        "Call me at {} after 5pm.",
        "Tel. {}",
        "my phone number is {}",
        "national id {}",
    ],
    "es": [
        "Pedido nº {}",
        "Factura {}",
        "llámame al {}",
        "Tel. {}",
        "número de pasaporte {}",
        "Puedes llamarme al {} mañana.",
    ],
    "fr": [
        "Commande n° {}",
        "Facture {}",
        "rappelez-moi au {}",
        "NAS : {}",
        "Tél. {}",
        "Vous pouvez me joindre au {}.",
    ],
    "de": [
        "Bestellnummer {}",
        "Rechnung {}",
        "Rufen Sie mich unter {} an.",
        "Tel. {}",
        "Sie erreichen mich unter {}.",
    ],
    "pt": ["Pedido {}", "Fatura {}", "me ligue no {}", "Tel. {}", "passaporte {}"],
    "it": [
        "Ordine n. {}",
        "Fattura {}",
        "chiamami al {}",
        "Tel. {}",
        "passaporto {}",
        "Il numero d'ordine è {}.",
    ],
    "nl": [
        "Bestelnummer {}",
        "Factuur {}",
        "bel me op {}",
        "Tel. {}",
        "paspoort {}",
        "Mijn ordernummer is {}.",
    ],
    "ja": ["注文番号 {}", "請求書番号 {}", "電話番号 {}", "パスポート番号 {}"],
}
SIGNATURE = {
    "en": "Best regards,\nSam Lee\nMobile: (415) 555-0134",
    "es": "Saludos,\nAna García\nTel. 912 345 678",
    "fr": "Cordialement,\nMarie Dupont\nTél. 01 23 45 67 89",
    "de": "Viele Grüße\nJonas Weber\nTel. 030 12345678",
    "pt": "Atenciosamente,\nJoão Silva\nTel. (11) 98765-4321",
    "it": "Cordiali saluti,\nGiulia Rossi\nTel. 02 1234 5678",
    "nl": "Met vriendelijke groet,\nDaan de Vries\nTel. 020 123 4567",
    "ja": "よろしくお願いいたします。\n山田太郎\nTEL 03-1234-5678",
}
QUOTE_HEADER = {
    "en": "On Mon, 3 Mar 2025 at 10:12, Support <help@example.com> wrote:",
    "es": "El lun, 3 mar 2025 a las 10:12, Soporte <help@example.com> escribió:",
    "fr": "Le lun. 3 mars 2025 à 10:12, Support <help@example.com> a écrit :",
    "de": "Am Mo., 3. März 2025 um 10:12 schrieb Support <help@example.com>:",
    "pt": "Em seg., 3 de mar. de 2025 às 10:12, Suporte <help@example.com> escreveu:",
    "it": "Il giorno lun 3 mar 2025 alle 10:12 Supporto <help@example.com> ha scritto:",
    "nl": "Op ma 3 mrt 2025 om 10:12 schreef Support <help@example.com>:",
    "ja": "2025年3月3日(月) 10:12 Support <help@example.com>:",
}


# --- numbers -----------------------------------------------------------------------------------

# (IIN prefix, length): every scheme and length in the published ranges.
CARD_SPECS = (
    ("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16),
    ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("644", 16), ("36", 14), ("300", 14),
    ("3528", 16), ("3589", 19), ("62", 16), ("62", 19), ("81", 16), ("6759", 12), ("5018", 18),
    ("509000", 16), ("606282", 16), ("508", 16), ("2200", 16), ("506099", 19), ("1", 15),
    ("9792", 16), ("60", 16), ("6304", 16), ("67", 19), ("31", 19), ("1946", 16), ("9704", 19),
    ("4903", 18), ("8600", 16), ("9860", 16), ("2205", 16), ("3841", 16), ("357111", 16),
)  # fmt: skip
# Prefixes no scheme in the table issues: acquirers' test ranges, private-label cards.
UNLISTED_PREFIXES = ("70", "71", "75", "77", "84", "85", "88", "90", "93", "96", "32", "33")

_DIGIT_BASES = (0xFF10, 0x0660, 0x0966)  # full-width, Arabic-Indic, Devanagari
INVISIBLES = ("\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff", "\u200e")


def _sizes_for(length: int, rng: random.Random) -> tuple[int, ...]:
    standard = {
        12: (4, 4, 4), 13: (4, 4, 5), 14: (4, 6, 4), 15: (4, 6, 5), 16: (4, 4, 4, 4),
        17: (4, 4, 4, 5), 18: (4, 4, 4, 6), 19: (4, 4, 4, 4, 3),
    }  # fmt: skip
    choice = rng.random()
    if choice < 0.45:
        return standard[length]
    if choice < 0.55:
        return (2,) * (length // 2) + ((1,) if length % 2 else ())
    if choice < 0.6:
        return (1,) * length
    if choice < 0.7:
        return (4, length - 4)
    if choice < 0.78:
        return (6, length - 6)
    if choice < 0.84 and length == 15:
        return (2, 3, 7, 3)
    if choice < 0.9:
        return (4,) * (length // 4) + ((length % 4,) if length % 4 else ())
    return standard[length]


def _join(digits: str, sizes: tuple[int, ...], seps: list[str]) -> str:
    out, pos = [], 0
    for i, size in enumerate(sizes):
        if i:
            out.append(seps[i - 1])
        out.append(digits[pos : pos + size])
        pos += size
    return "".join(out)


def _written_card(pan: str, rng: random.Random) -> str:
    """`pan` as a customer types it: some grouping, some separators, maybe other digits."""
    if rng.random() < 0.2:
        written = pan
    else:
        sizes = _sizes_for(len(pan), rng)
        uniform = rng.choice([" ", " ", "-", ".", "  ", "   ", "\u00a0", "\u3000"])
        if len(sizes) == 2 and uniform == ".":
            uniform = " "  # `4805.230350249431` is a decimal number, not a grouped card
        if min(sizes[:-1]) >= 3 and len(sizes) > 2 and rng.random() < 0.15:
            pool = [" ", "-", " - ", "\n", "\n> "]
            seps = [rng.choice(pool) for _ in sizes[1:]]
        elif len(sizes) == 4 and min(sizes) >= 3 and rng.random() < 0.1:
            seps = [uniform, "\n", uniform]
        else:
            seps = [uniform] * (len(sizes) - 1)
        written = _join(pan, sizes, seps)
    if rng.random() < 0.08:
        base = rng.choice(_DIGIT_BASES)
        written = written.translate({ord(c): base + int(c) for c in "0123456789"})
    return written


def _expiry(rng: random.Random) -> str:
    m, y = rng.randint(1, 12), rng.randint(25, 35)
    return rng.choice(
        [f"{m:02d}-20{y}", f"{m}-{y}", f"{m:02d}/{y}", f"{m:02d}/20{y}", f"{m:02d} {y}"]
    )


def _valid_pan(rng: random.Random) -> str:
    prefix, length = rng.choice(CARD_SPECS)
    return make_pan(prefix, length, rng)


def _ssn_value(rng: random.Random, *, grouped: bool) -> str:
    ssn = make_ssn(rng)
    if not grouped:
        return ssn
    sep = rng.choice(["-", "-", " ", "."])
    return f"{ssn[:3]}{sep}{ssn[3:5]}{sep}{ssn[5:]}"


def _digits(rng: random.Random, n: int, first: str = "123456789") -> str:
    return rng.choice(first) + "".join(rng.choice("0123456789") for _ in range(n - 1))


def _mod10(rng: random.Random, n: int, first: str = "123456789") -> str:
    body = _digits(rng, n - 1, first)
    return body + luhn_check_digit(body)


def _aba(rng: random.Random) -> str:
    # ABA routing: 3-7-1 weighted check digit; first two digits 01-12, 21-32.
    first = f"{rng.choice([*range(1, 13), *range(21, 33)]):02d}"
    body = first + _digits(rng, 6, "0123456789")
    weights = (3, 7, 1, 3, 7, 1, 3, 7)
    check = (10 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 10) % 10
    return body + str(check)


# --- the cores: one sentence each, a value with its label or a look-alike ----------------------

Core = Callable[[_Builder, random.Random, str], str]


def _sentence(b: _Builder, template: str, entity: str | None, value: str) -> None:
    before, after = template.split("{}")
    b.add(before)
    b.value(entity, value)
    b.add(after)


def core_card_with_word(b: _Builder, rng: random.Random, lang: str) -> str:
    pan = _valid_pan(rng)
    _sentence(b, rng.choice(CARD_SENTENCES[lang]), CARD, _written_card(pan, rng))
    return "card"


def core_card_neutral(b: _Builder, rng: random.Random, lang: str) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("37", 15), ("6011", 16), ("2221", 16)])
    pan = make_pan(prefix, length, rng)
    _sentence(b, rng.choice(NEUTRAL_SENTENCES[lang]), CARD, _written_card(pan, rng))
    return "card-neutral"


def core_card_expiry(b: _Builder, rng: random.Random, lang: str) -> str:
    # Class 1: an expiry or date right after the number.
    pan = make_pan(*rng.choice([("4", 16), ("55", 16), ("2720", 16), ("6011", 16)]), rng)
    written = _join(pan, (4, 4, 4, 4), [rng.choice([" ", "-", "  "])] * 3)
    b.add(rng.choice(CARD_SENTENCES[lang]).split("{}")[0])
    b.value(CARD, written)
    b.add(rng.choice([" ", " ", "  ", ", ", " exp "]) + _expiry(rng))
    if rng.random() < 0.3:
        b.add(rng.choice([" cvv ", " CVC: ", " "]) + _digits(rng, 3, "0123456789"))
    b.add(rng.choice([".", "", " thanks"]))
    return "card-expiry"


GLUED_BEFORE = ("cc", "CC#", "CARD#", "card:", "CREDIT CARD", "visa:", "Visa", "tarjeta:", "ccn")


def core_card_glued(b: _Builder, rng: random.Random, lang: str) -> str:
    # Class 2: a card or expiry word glued to the digits.
    pan = make_pan(*rng.choice([("4", 16), ("51", 16), ("37", 15), ("6011", 16)]), rng)
    written = pan if rng.random() < 0.5 else _join(pan, (4, 4, 4, 4)[: len(pan) // 4], [" "] * 3)
    if len(pan) == 15:
        written = pan
    glue_after = rng.random() < 0.4
    b.add(rng.choice(["", "pls use ", "ok "]) + rng.choice(GLUED_BEFORE))
    b.value(CARD, written)
    if glue_after:
        b.add(rng.choice(["exp", "EXP", "exp:", "expiry"]) + _expiry(rng).replace(" ", "/"))
    b.add(rng.choice(["", ".", " thx"]))
    return "card-glued"


def core_card_invisible(b: _Builder, rng: random.Random, lang: str) -> str:
    # Class 5: format characters between digits or groups.
    pan = make_pan(*rng.choice([("4", 16), ("55", 16), ("37", 15)]), rng)
    inv = rng.choice(INVISIBLES)
    if rng.random() < 0.5:
        sizes = (4, 4, 4, 4) if len(pan) == 16 else (4, 6, 5)
        written = _join(pan, sizes, [rng.choice([inv, " " + inv, inv + " "])] * (len(sizes) - 1))
    else:
        written = "".join(c + (inv if rng.random() < 0.2 else "") for c in pan).rstrip(inv)
    _sentence(b, rng.choice(CARD_SENTENCES[lang]), CARD, written)
    return "card-invisible"


def core_card_escaped(b: _Builder, rng: random.Random, lang: str) -> str:
    # Class 6: escapes written out literally (a JSON document in a form field, a pasted log).
    pan = make_pan(*rng.choice([("4", 16), ("55", 16), ("6011", 16)]), rng)
    sep = rng.choice([" ", " ", "\\n", "\\r\\n"])  # a line break, written out
    written = _join(pan, (4, 4, 4, 4), [sep] * 3) if rng.random() < 0.7 else pan
    b.add(rng.choice(['{"note": "card:\\n', "card\\t", "\\u0435 ", "Karte:\\r\\n", "cc=\\n"]))
    b.value(CARD, written)
    b.add(rng.choice(["\\n", '\\n\\u00e9"}', "\\t\\t", ""]))
    return "card-escaped"


def core_card_unlisted(b: _Builder, rng: random.Random, lang: str) -> str:
    # Class 4: Luhn-valid, prefix outside the IIN table, with card evidence.
    pan = make_pan(rng.choice(UNLISTED_PREFIXES), rng.choice([16, 16, 16, 15, 19]), rng)
    if rng.random() < 0.5 and len(pan) == 16:
        written = _join(pan, (4, 4, 4, 4), [rng.choice([" ", "-"])] * 3)
        template = rng.choice(NEUTRAL_SENTENCES[lang] + CARD_SENTENCES[lang])
    else:
        written = _written_card(pan, rng)
        template = rng.choice(CARD_SENTENCES[lang])
    _sentence(b, template, CARD, written)
    return "card-unlisted"


def core_card_luhn_fail(b: _Builder, rng: random.Random, lang: str) -> str:
    # Class 7: a typo'd card right after a card word.
    pan = luhn_break_last(make_pan(*rng.choice([("4", 16), ("55", 16), ("37", 15)]), rng))
    sizes = (4, 4, 4, 4) if len(pan) == 16 else (4, 6, 5)
    if rng.random() < 0.3:
        # Printed as the scheme prints it, after a payment verb.
        written = _join(pan, sizes, [rng.choice([" ", "-"])] * (len(sizes) - 1))
        _sentence(b, rng.choice(PAYMENT_SENTENCES[lang]), CARD, written)
        return "card-luhn-fail"
    written = pan if rng.random() < 0.4 else _join(pan, sizes, [rng.choice([" ", "-"])] * 3)
    _sentence(b, rng.choice(CARD_SENTENCES[lang]), CARD, written)
    return "card-luhn-fail"


def core_invalid_card(b: _Builder, rng: random.Random, lang: str) -> str:
    pan = luhn_break_last(make_pan(*rng.choice([("4", 16), ("5018", 16), ("51", 16)]), rng))
    written = _join(pan, (4, 4, 4, 4), [rng.choice([" ", "-"])] * 3)
    _sentence(b, rng.choice(INVALID_SENTENCES[lang]), None, written)
    return "invalid-card"


def core_ssn(b: _Builder, rng: random.Random, lang: str) -> str:
    if rng.random() < 0.5:
        _sentence(b, rng.choice(SSN_SENTENCES[lang]), SSN, _ssn_value(rng, grouped=False))
        return "ssn-bare"
    # With separators an SSN stands alone: in a neutral sentence too.
    sentences = SSN_SENTENCES[lang] + NEUTRAL_SENTENCES[lang]
    _sentence(b, rng.choice(sentences), SSN, _ssn_value(rng, grouped=True))
    return "ssn-grouped"


def core_other_nine(b: _Builder, rng: random.Random, lang: str) -> str:
    # Class 9: bare 9 digits (SSN-valid) after another identifier's label or in phone context.
    value = rng.choice([_aba(rng), make_ssn(rng), _mod10(rng, 9)])
    _sentence(b, rng.choice(OTHER_ID_SENTENCES[lang]), None, value)
    return "other-9"


def core_url(b: _Builder, rng: random.Random, lang: str) -> str:
    # Class 8: whole numeric path segments of links.
    ident = rng.choice([make_pan("4", 16, rng), make_ssn(rng), _digits(rng, rng.randint(9, 19))])
    template = rng.choice(
        [
            "https://acme.zendesk.com/agent/tickets/{}",
            "https://help.acme.com/hc/en-us/articles/{}-How-to-update-billing",
            "see /hc/{}/articles/{}".replace("{}", rng.choice(["es", "fr-fr", "de"]), 1),
            "https://acme.my.salesforce.com/knowledge/articles/{}/en-us",
            "https://app.intercom.com/a/inbox/abc123/inbox/conversation/{}?view=List",
            "<https://acme.freshdesk.com/a/tickets/{}>",
            "(https://github.com/acme/app/issues/{}#issuecomment-1)",
            "acme.zendesk.com/agent/tickets/{}",
        ]
    )
    b.add(rng.choice(["Linked ticket: ", "KB: ", "Related: ", ""]))
    _sentence(b, template, None, ident)
    return "url-path"


def core_url_card(b: _Builder, rng: random.Random, lang: str) -> str:
    # Still scanned: a query value, a path segment a card word labels, a card-grouped segment.
    pan = make_pan(*rng.choice([("4", 16), ("55", 16)]), rng)
    kind = rng.randrange(3)
    if kind == 0:
        b.add("https://pay.example.com/checkout?card=")
        b.value(CARD, pan)
        b.add("&amount=10")
    elif kind == 1:
        b.add("POST https://api.example.com/v1/cards/")
        b.value(CARD, pan)
        b.add("/charge")
    else:
        b.add("https://example.com/lookup/")
        b.value(CARD, _join(pan, (4, 4, 4, 4), [" "] * 3))
        b.add("/")
    return "url-card"


def core_long_not_card(b: _Builder, rng: random.Random, lang: str) -> str:
    # Class 10: a 19-digit card-shaped number that is not a card; no SSN inside it either.
    digits = _digits(rng, 19, "0789")
    sizes = rng.choice([(5, 9, 5), (4, 9, 6), (6, 9, 4)])
    digits = digits[: sizes[0]] + make_ssn(rng) + digits[sizes[0] + 9 :]
    if luhn_check_digit(digits[:-1]) == digits[-1]:
        digits = luhn_break_last(digits)
    written = _join(digits, sizes, [" "] * 2)
    b.add(rng.choice(["Reference ", "Ref: ", "Transaction ID ", "Your reference is "]))
    b.value(None, written)
    b.add(".")
    return "long-not-card"


def _imei(rng: random.Random) -> str:
    value = _mod10(rng, 15, "3")
    return value if rng.random() < 0.5 else f"{value[:2]}-{value[2:8]}-{value[8:14]}-{value[14]}"


def _iccid(rng: random.Random) -> str:
    return "89" + _mod10(rng, rng.choice([17, 18]), "0123456789")


def _iban(rng: random.Random) -> str:
    country = rng.choice(["DE", "FR", "ES", "IT", "NL", "PT", "BE"])
    raw = f"{country}{rng.randint(10, 99)}" + _digits(rng, 18, "0123456789")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.6 else raw


def _barcode(rng: random.Random) -> str:
    body = _digits(rng, 12, "0123456789")
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return body + str(check)


def _phone(rng: random.Random) -> str:
    return rng.choice(
        [
            f"+1 {rng.randint(201, 989)} {rng.randint(200, 999)} {rng.randint(1000, 9999)}",
            f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}",
            f"06 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} "
            f"{rng.randint(10, 99)}",
            f"0{rng.randint(151, 179)} {rng.randint(1000000, 99999999)}",
            f"090-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
            f"+55 11 9{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
            f"{rng.randint(60000, 99999)} {rng.randint(10000, 99999)}",
            f"+86 13{rng.randint(0, 9)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"+61 4{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
            f"6{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
            f"+972-5{rng.randint(0, 9)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        ]
    )


def _ts(rng: random.Random) -> str:
    return rng.choice(
        [
            f"{rng.randint(1_600_000_000_000, 1_799_999_999_999)}",
            f"{rng.randint(1_600_000_000, 1_799_999_999)}.{rng.randint(0, 999999):06d}",
            f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
            f"20250{rng.randint(1, 9)}{rng.randint(10, 28)}{rng.randint(100000, 235959)}",
        ]
    )


LOOKALIKES: dict[str, tuple[Callable[[random.Random], str], tuple[str, ...]]] = {
    "imei": (_imei, ("IMEI: {}", "my phone's IMEI is {}", "IMEI-Nummer {}", "numéro IMEI {}")),
    "iccid": (_iccid, ("ICCID {}", "SIM card ICCID: {}", "número ICCID {}")),
    "iban": (_iban, ("IBAN {}", "IBAN: {}", "please refund to {}")),
    "tracking": (
        lambda r: rng_choice_tracking(r),
        ("Tracking number {}", "Sendungsnummer {}", "numéro de suivi {}", "rastreio {}"),
    ),
    "barcode": (_barcode, ("EAN {}", "barcode {}", "código de barras {}", "Strichcode {}")),
    "phone": (_phone, ("call me at {}", "Tel. {}", "llámame al {}", "WhatsApp {}", "{}")),
    "timestamp": (_ts, ("at {} the payment failed", "event_time={}", "ts {}")),
}


def rng_choice_tracking(rng: random.Random) -> str:
    usps = rng.choice(["92", "93", "94"]) + _mod10(rng, 20, "0123456789")
    return rng.choice(
        [
            " ".join(usps[i : i + 4] for i in range(0, 22, 4)),
            usps,
            _mod10(rng, 12, "7"),
            "1Z" + "".join(rng.choice("0123456789ABCDEFXY") for _ in range(16)),
            _mod10(rng, 20, "9"),
        ]
    )


def core_lookalike(b: _Builder, rng: random.Random, lang: str) -> str:
    kind = rng.choice(sorted(LOOKALIKES))
    make, templates = LOOKALIKES[kind]
    _sentence(b, rng.choice(templates), None, make(rng))
    return kind


# Weights: how often each core appears.
CORES: tuple[tuple[Core, int], ...] = (
    (core_card_with_word, 12),
    (core_card_neutral, 5),
    (core_card_expiry, 6),
    (core_card_glued, 5),
    (core_card_invisible, 4),
    (core_card_escaped, 4),
    (core_card_unlisted, 4),
    (core_card_luhn_fail, 4),
    (core_invalid_card, 2),
    (core_ssn, 8),
    (core_other_nine, 10),
    (core_url, 8),
    (core_url_card, 3),
    (core_long_not_card, 3),
    (core_lookalike, 12),
)
_CORE_FNS = [c for c, _ in CORES]
_CORE_WEIGHTS = [w for _, w in CORES]


# --- message shapes ----------------------------------------------------------------------------


def _cores(b: _Builder, rng: random.Random, lang: str, sep: str) -> list[str]:
    kinds = []
    for i in range(rng.choice([1, 1, 1, 2, 2, 3])):
        if i:
            # A sentence between two values: digits on two lines may be one number.
            b.add(sep + rng.choice(FILLER[lang]) + sep)
        core = rng.choices(_CORE_FNS, _CORE_WEIGHTS)[0]
        kinds.append(core(b, rng, lang))
    return kinds


def _chat(rng: random.Random, lang: str) -> Message:
    b = _Builder()
    if rng.random() < 0.5:
        b.add(rng.choice(GREETING[lang]) + " ")
    kinds = _cores(b, rng, lang, "\n")
    if rng.random() < 0.5:
        b.add(" " + rng.choice(FILLER[lang]))
    return Message(b.text(), b.expected, kinds, lang)


def _email(rng: random.Random, lang: str) -> Message:
    b = _Builder()
    b.add(rng.choice(GREETING[lang]) + "\n\n")
    kinds = _cores(b, rng, lang, "\n")
    b.add("\n\n" + rng.choice(FILLER[lang]) + "\n\n" + SIGNATURE[lang] + "\n\n")
    b.add(QUOTE_HEADER[lang] + "\n> " + rng.choice(FILLER[lang]) + "\n> ")
    b.add(f"> Ticket #{rng.randint(10000, 999999)}\n")
    return Message(b.text(), b.expected, kinds, lang)


def _note(rng: random.Random, lang: str) -> Message:
    b = _Builder()
    b.add(
        rng.choice(["Internal note: ", "[Agent] ", "Macro applied. ", "Escalated to L2.\n"])
        + f"See https://acme.zendesk.com/agent/tickets/{rng.randint(10**5, 10**10)} ."
        + "\nCustomer wrote:\n"
    )
    kinds = _cores(b, rng, lang, "\n")
    return Message(b.text(), b.expected, kinds, lang)


SHAPES = (_chat, _chat, _email, _note)


def generate(count: int, seed: int) -> list[Message]:
    """`count` labelled messages, the same for the same seed."""
    rng = random.Random(seed)
    return [rng.choice(SHAPES)(rng, rng.choice(LANGS)) for _ in range(count)]
