"""Every word detection reads, as data, in one place: en, es, fr, de, pt, it, nl and ja.

Latin-script words are matched as whole lowercase words (`context.py` cuts the text into
words); Japanese has no spaces between words, so its words are matched as substrings.

- CARD: words that name a payment card (or its expiry / security code).
- SSN: words that name a US Social Security number.
- OTHER_ID: labels of identifiers that are neither: couriers, orders, invoices, tickets, banks,
  phones, other countries' national ids, passports, devices, barcodes. Right in front of a
  number they say what it is.
- NOT_SSN_ONLY: labels that rule out an SSN but not a card (a PAN is a "primary account
  number": `account 4111 ...` may well be a card).
- PHONE: words of phone context (`call me at`, `llámame al`): a bare 9-digit number in their
  clause is a phone number, not an SSN.
- INVALID: words by which a text calls a number invalid or a test value; a Luhn-failing number
  next to them is not a typo'd card.
- GLUED: card and expiry words that may be written glued to the digits (`cc4111...`,
  `...1111exp06/27`) without making them part of an identifier.
"""

from __future__ import annotations


def _words(*groups: str) -> frozenset[str]:
    return frozenset(w for g in groups for w in g.split())


CARD = _words(
    # en
    "card cards credit debit visa mastercard mc amex discover diners jcb unionpay maestro rupay "
    "hipercard elo mir cc cc# card# ccn cvv cvv2 cvc cvc2 exp expiry expires expiration creditcard",
    # es
    "tarjeta tarjetas crédito credito débito debito caducidad vencimiento",
    # fr
    "carte cartes bancaire cb expiration",
    # de
    "karte karten kreditkarte kreditkartennummer kartennummer girokarte ec-karte ablaufdatum",
    # pt
    "cartão cartao cartões validade",
    # it
    "carta carte scadenza bancomat",
    # nl
    "kaart kaartnummer creditcardnummer pinpas betaalkaart vervaldatum",
)
CARD_PHRASES = frozenset({("master", "card"), ("american", "express"), ("union", "pay")})
# Payment verbs raise a card's score but are too common to count as card evidence on their own.
PAYMENT = _words(
    "billing charge charged paid payment pay refund pagué pago payé paiement bezahlt zahlung "
    "paguei pagamento pagato betaald betaling"
)
SSN = _words(
    "ssn ssns ss# ssa itin irs taxpayer w-9 w-2 sozialversicherungsnummer",
)
SSN_PHRASES = frozenset(
    {
        ("social", "security"),
        ("soc", "sec"),
        ("ss", "#"),
        ("ss", "no"),
        ("tax", "id"),
        ("seguro", "social"),
        ("sécurité", "sociale"),
        ("securite", "sociale"),
        ("previdenza", "sociale"),
        ("segurança", "social"),
    }
)
OTHER_ID = _words(
    # en: couriers, commerce, support, banks, documents, devices, other countries' ids
    "tracking track shipment parcel package consignment waybill awb order invoice receipt ref "
    "reference ticket case conversation iban bic swift routing aba rtn phone tel telephone fax "
    "mobile cell whatsapp passport license licence driver driver's drivers vat ust ust-idnr "
    "idnr ustid steuernummer steuer-id tin ein npi nhs sin tfn medicare aadhaar isbn issn imei "
    "meid iccid sim serial sku upc ean gtin barcode cusip isin sedol confirmation booking pnr "
    "reservation claim transaction txn zip postal postcode member policy employee student tckn "
    "cpf cnpj nino mrn patient id identity national customer user uid guid uuid version zehut "
    "teudat nas bsn nif nie dni codice fiscale",
    # es
    "pedido factura ticket seguimiento envío envio pasaporte teléfono telefono móvil movil "
    "celular recibo referencia código codigo barras cuenta",
    # fr
    "commande facture suivi colis passeport téléphone telephone portable tél reçu "
    "référence dossier",
    # de
    "bestellung bestellnummer rechnung rechnungsnummer sendungsnummer sendung paket reisepass "
    "telefon handy telefonnummer kundennummer auftragsnummer vorgangsnummer strichcode "
    "imei-nummer",
    # pt
    "fatura rastreio rastreamento encomenda passaporte telefone celular protocolo",
    # it
    "ordine fattura spedizione tracciamento passaporto telefono cellulare ricevuta pratica",
    # nl
    "bestelnummer bestelling factuur factuurnummer zending pakket paspoort telefoon mobiel "
    "klantnummer ordernummer referentie kenmerk",
)


def _with_elisions(ws: frozenset[str]) -> frozenset[str]:
    # French and Italian elide articles and prepositions onto the next word: `d'ordine`,
    # `l'ordre`, `dell'ordine`, `n'importe`; the words are read whole (`context.py`).
    return ws | {f"{e}'{w}" for w in ws for e in ("d", "l", "dell", "nell", "all")}


CARD = _with_elisions(CARD)
OTHER_ID = _with_elisions(OTHER_ID)

# Labels that rule out an SSN, but not a card: a card number is an account number.
NOT_SSN_ONLY = _words("account acct accountnummer konto kontonummer conta conto rekening compte")
PHONE = _words(
    "call phone tel telephone mobile cell whatsapp sms text fax ring dial "
    "llámame llamame llámeme llamar llamarme contactarme teléfono telefono móvil movil celular "
    "rappelez-moi rappelez appelez-moi appeler joindre contacter téléphone portable tél "
    "rufen anrufen telefon handy erreichbar erreichen kontaktieren "
    "ligue ligar telefone liga "
    "chiamami chiamare telefono cellulare "
    "bel bellen telefoon mobiel"
)
INVALID = _words(
    "invalid accepted fake test dummy example sample "
    "inválida invalida inválido invalido válida valida ungültig ungueltig ongeldig "
    "invalide non valida"
)
# Cards a phrase calls invalid: "not valid", "no es válida" read as INVALID through `valida`.
GLUED = _words(
    "card cc ccn cc# visa mastercard mc amex discover credit debit tarjeta carte karte kaart "
    "cartão cartao carta creditcard exp expiry expires cvv cvc"
)
# Field names that name a card's number, written as one word (`pan`, `ccnum`, `cardNumber`):
# with CARD, what makes `{"x_first8": ..., "x_last8": ...}` a card's two halves.
CARD_FIELD_NAMES = _words("pan ccnum ccnumber cardnum cardnumber cardno ccno cnum")
# ... and an SSN (`ssn1`, `ss_num`, `socsec`), with SSN and its phrases.
SSN_FIELD_NAMES = _words("ss ssnum ssno socsec socialsecurity")
# Abbreviated labels whose dot does not end a sentence (`Tel. 536904399`, `No. 12345`).
ABBREVIATIONS = (
    "tel",
    "tél",
    "no",
    "nr",
    "ref",
    "inv",
    "ord",
    "acct",
    "fax",
    "mob",
    "núm",
    "num",
    "n",
    "nº",
    "art",
)
# Identifiers with a structure of their own (issue 18, item 11). A generic label (order,
# ticket, invoice, reference, transaction, id, tracking, ...) no longer keeps a 15-16 digit
# Luhn-and-IIN-valid number: only a label whose identifier an all-digit number of that length
# can be still does. The digit counts an all-digit identifier of each kind has, from the
# published formats: IMEI 15 and IMEISV 16 (3GPP TS 23.003), MEID 18 in decimal; E.164 phone
# numbers at most 15 digits (ITU-T E.164); ICCID 18-22 (ITU-T E.118); ABA routing 9; CUSIP 9;
# SEDOL 7. IBAN and ISIN start with letters: no all-digit number is one.
_PHONE_LABELS = _words(
    "phone tel telephone fax mobile cell whatsapp teléfono telefono móvil movil celular "
    "téléphone portable tél telefon handy telefonnummer telefone cellulare telefoon mobiel "
    "電話番号 電話"
)
STRUCTURED_ID_DIGITS: dict[str, range] = {
    **dict.fromkeys(_words("imei imei-nummer imeisv meid"), range(14, 19)),
    **dict.fromkeys(_PHONE_LABELS, range(7, 16)),
    **dict.fromkeys(_words("iccid sim"), range(18, 23)),
    **dict.fromkeys(_words("routing aba rtn cusip"), range(9, 10)),
    **dict.fromkeys(_words("sedol"), range(7, 8)),
    **dict.fromkeys(_words("iban isin"), range(0)),
}

# "Number", abbreviated: `no.4111...` is a label and a number, not a code `INV.4111...`.
NUMBER_ABBREVIATIONS = frozenset(("no", "nr", "num", "nro", "n"))
# Words that may stand between a label and its number ("number", "is", "no", "de").
FILLER = _words(
    "number numbers num no nr nro is was are of the my your our for code ending in on "
    "número numero numéro nummer es est ist é è é del de da do di van het le la el mi mon ma "
    "mein meine meu minha il lo al au bij lautet"
)

# What may stand between a label and its number for the label to be attached to it (`Phone:
# `, `order # `, `passport number is `): punctuation and these words only. A label further off
# (`order ending in`, `ticket for the`) is unattached, and a card or SSN word in the same
# clause outweighs it.
ATTACHING = _words(
    "number numbers num no nr nro n nº is was es est ist é è lautet número numero numéro nummer"
)
# A phone word after one of these (and an article) names how a number was given, not what it
# is: `read the card number over the phone: 4111 ...`, `por teléfono`, `am Telefon`.
CHANNEL_PREPOSITIONS = _words("over by on via per through thru par por pelo pela am au")
ARTICLES = _words("the a an my your our their his her el la le il lo o der die das dem den")

# Japanese, matched as substrings of the clause.
JA_CARD = ("カード", "クレジット", "デビット", "有効期限", "セキュリティコード")
JA_PAYMENT = ("支払", "決済")
JA_SSN = ("社会保障番号", "ソーシャルセキュリティ")
JA_OTHER = (
    "注文番号",
    "請求書番号",
    "電話番号",
    "電話",
    "パスポート",
    "追跡番号",
    "お問い合わせ番号",
    "口座番号",
    "会員番号",
    "伝票番号",
)
JA_INVALID = ("無効", "テスト")
