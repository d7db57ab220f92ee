"""A synthetic support-channel corpus for the detection benchmark, from templates and a seed.

What support traffic looks like to a card/SSN detector: most messages hold no card at all;
many hold short numbers (order ids, dates, times, prices, phone numbers, tracking numbers);
a few hold a card number or an SSN; some are long e-mails dragging their quoted history
(`> ` lines under "On ... wrote:"), some are HTML. All prose here was written for this file.

`generate_mix(seed, count)` builds that mix and says, per message, which values it planted, so
a test can check the detector finds them. `generate_clean(seed, count)` builds messages with
short numbers only (prices, dates, times, 4-8 digit ids, phone numbers): no digit run shaped
like a card or an SSN, for the detector's MB/s figure.

Everything comes from one `random.Random(seed)`: the same seed and count give the same corpus.
Card numbers are Luhn-valid with real scheme prefixes but random otherwise (test data).

    python benchmarks/support_mix.py --seed 7 --count 2000            # summary only
    python benchmarks/support_mix.py --seed 7 --count 2000 --out mix.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

CREDIT_CARD = "CREDIT_CARD"
US_SSN = "US_SSN"

# Shape weights: chat lines, long e-mails with quoted history, HTML bodies (helpdesk widgets).
SHAPES = (("chat", 60), ("email", 25), ("html", 15))
# Payload weights: nothing numeric, short benign numbers, a card, an SSN.
PAYLOADS = (("prose", 42), ("numbers", 50), ("card", 5), ("ssn", 3))


@dataclass(frozen=True, slots=True)
class Planted:
    """A sensitive value the generator put in a message, exactly as it appears in the text."""

    entity: str
    value: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SupportMessage:
    shape: str
    payload: str
    text: str = field(repr=False)
    planted: tuple[Planted, ...] = ()


# --- prose ----------------------------------------------------------------------------------

NAMES = (
    "Alex",
    "Priya",
    "Jordan",
    "Mei",
    "Sam",
    "Tomasz",
    "Fatima",
    "Diego",
    "Hannah",
    "Kwame",
    "Lucia",
    "Noah",
    "Aiko",
    "Ravi",
    "Chloe",
    "Omar",
    "Ingrid",
    "Mateo",
    "Zara",
    "Liam",
)
AGENTS = ("Dana", "Chris", "Robin", "Taylor", "Morgan", "Casey", "Jamie", "Riley")
PRODUCTS = (
    "the walnut desk lamp",
    "a pair of trail running shoes",
    "the 12-cup coffee maker",
    "the linen duvet cover",
    "a wireless keyboard",
    "the cast iron skillet",
    "the kids' rain jacket",
    "a set of ceramic mugs",
    "the standing desk frame",
    "the noise cancelling headphones",
    "a yoga mat",
    "the annual plan",
    "the family plan",
    "a gift card",
    "the replacement charger",
    "the blue backpack",
)
GREETINGS = ("Hi", "Hello", "Hey", "Good morning", "Hi there", "Dear support team", "Hello team")
SIGNOFFS = ("Thanks", "Thank you", "Cheers", "Best", "Kind regards", "Many thanks", "Regards")

# Sentences with {product}, {agent}, {name}: no numbers at all.
PROSE = (
    "I ordered {product} last week and it still has not arrived.",
    "The package was left at the wrong door and my neighbour brought it over this morning.",
    "Can you tell me when {product} will be back in stock?",
    "I would like to cancel my subscription before the next renewal.",
    "The item arrived damaged: the box was crushed and one corner is cracked.",
    "I was charged twice for the same order, could you look into it?",
    "I cannot log in to my account since the last update of the app.",
    "The password reset e-mail never reaches my inbox, not even the spam folder.",
    "Is it possible to change the delivery address on an order that has already shipped?",
    "I love {product}, but the colour is a bit different from the photos on the website.",
    "My refund was approved but I have not seen it on my statement yet.",
    "Could you send me an invoice with my company name on it?",
    "The size chart says medium but it fits like a small, can I exchange it?",
    "Your courier said nobody was home, but I was home all day.",
    "I tried to apply the discount code at checkout and it says it has expired.",
    "Please remove my old address from my profile.",
    "The tracking page has not updated for a few days now.",
    "I spoke to {agent} yesterday and was told someone would call me back.",
    "Thanks for the quick reply, that solved it.",
    "The instructions in the box are missing a page about assembly.",
    "I would like to return {product}; it does not suit me.",
    "Why does my account show a pending charge when I cancelled the order?",
    "Do you ship to Canada, and if so, how long does it usually take?",
    "The app crashes every time I open the order history screen.",
    "My daughter ordered {product} on my account by mistake; can we undo it?",
    "I never received the confirmation e-mail for my order.",
    "Can I pick up the order at the store instead of having it delivered?",
    "The battery of {product} drains within an hour, which seems wrong.",
    "I am happy with the product but the delivery took much longer than promised.",
    "Please update the phone number on my account, the old one is no longer in service.",
    "I have attached photos of the damage as you asked.",
    "Is there a warranty on {product}, and what does it cover?",
    "Your chat bot keeps sending me in circles, I would like to talk to a person.",
    "I would like to close my account and have my data deleted.",
    "The gift message was not included in the parcel, which was a shame.",
    "Could you check whether my payment went through? The page timed out.",
    "I received someone else's order, with a different name on the label.",
    "When I click on pay nothing happens, I have tried two browsers.",
    "My loyalty points disappeared after the last order.",
    "Sorry for the long message, I just want this sorted before the holidays.",
)

# Sentences with short benign numbers. Placeholders are filled by `_fill_numbers`.
NUMBERS = (
    "My order #{order} was placed on {date} and is still marked as processing.",
    "I paid {price} but the receipt shows {price2}.",
    "The courier gave me tracking number {tracking}, but it shows no updates.",
    "You can reach me at {phone} between {time} and {time2}.",
    "Order {order} contains {qty} items but only {qty2} arrived.",
    "The delivery window was {date}, {time} to {time2}, and nobody came.",
    "I was charged {price} on {date} and again on {date2}.",
    "My case number is {case} if that helps.",
    "Please call me back on {phone}, I am free after {time}.",
    "The total should be {price} after the {pct}% discount.",
    "I returned it on {date} with return label {rma}.",
    "Invoice {invoice} says {price}, which includes {price2} shipping.",
    "The app version is {version} on an iPhone, updated on {date}.",
    "My account was created on {date} under the name {name}.",
    "Your tracking link for {tracking} says delivered on {date} at {time}.",
    "I am in apartment {qty}, building {qty2}, the buzzer works.",
    "Reference {case}: still waiting for the refund of {price}.",
    "The parcel weighed {qty} kg according to the label dated {date}.",
)

# Card sentences: {pan} is the card exactly as typed; {exp} an expiry.
CARD_LINES = (
    "Please charge it to my card {pan} instead.",
    "My card number is {pan} exp {exp}.",
    "Card: {pan}",
    "can you try the visa {pan} please, exp {exp}",
    "The new credit card is {pan}, the old one expired.",
    "I paid with {pan} and the charge shows twice.",
    "Here is my card {pan} expiry {exp}, use it for the replacement.",
    "debit card {pan}",
)
SSN_LINES = (
    "My SSN is {ssn}.",
    "For the credit check you asked for my social security number: {ssn}",
    "SSN {ssn}, date of birth is on the form.",
    "The tax form needs my social security number, it is {ssn}.",
    "ssn: {ssn}",
)

DISCLAIMER = (
    "This e-mail and any attachments are confidential and intended solely for the addressee. "
    "If you have received it in error, please notify the sender and delete it. Opinions "
    "expressed here are those of the author and not necessarily those of the company."
)

# Card numbers: scheme prefix, length, typed groupings (Amex is printed 4-6-5).
CARD_SCHEMES = (
    ("4", 16, ((4, 4, 4, 4),)),
    ("51", 16, ((4, 4, 4, 4),)),
    ("55", 16, ((4, 4, 4, 4),)),
    ("2221", 16, ((4, 4, 4, 4),)),
    ("34", 15, ((4, 6, 5),)),
    ("37", 15, ((4, 6, 5),)),
    ("6011", 16, ((4, 4, 4, 4),)),
)
CARD_SEPARATORS = ("", " ", "-", " ")


def luhn_complete(partial: str) -> str:
    """Append the Luhn check digit (ISO/IEC 7812-1 Annex B) to `partial`."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return partial + str((10 - total % 10) % 10)


def make_pan(rng: random.Random) -> str:
    """A Luhn-valid card number with a real scheme prefix, grouped as people type it."""
    prefix, length, groupings = rng.choice(CARD_SCHEMES)
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    digits = luhn_complete(body)
    sep = rng.choice(CARD_SEPARATORS)
    if not sep:
        return digits
    parts, pos = [], 0
    for size in rng.choice(groupings):
        parts.append(digits[pos : pos + size])
        pos += size
    return sep.join(parts)


def make_ssn(rng: random.Random) -> str:
    """An SSN in ranges the SSA issues (area not 000/666/9xx, group not 00, serial not 0000)."""
    area = rng.choice([a for a in range(1, 900) if a != 666])
    group = rng.randrange(1, 100)
    serial = rng.randrange(1, 10000)
    sep = rng.choice(("-", "-", "-", " ", ""))
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


def _date(rng: random.Random) -> str:
    y, m, d = rng.choice((2024, 2025)), rng.randrange(1, 13), rng.randrange(1, 29)
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return rng.choice(
        (f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}", f"{d}.{m}.{y}", f"{months[m - 1]} {d}")
    )


def _time(rng: random.Random) -> str:
    h, mi = rng.randrange(7, 21), rng.choice((0, 15, 30, 45))
    return rng.choice((f"{h}:{mi:02d}", f"{(h - 1) % 12 + 1}:{mi:02d} {'am' if h < 12 else 'pm'}"))


def _price(rng: random.Random) -> str:
    amount = rng.randrange(199, 150000) / 100
    return rng.choice((f"${amount:,.2f}", f"{amount:.2f} USD", f"€{amount:.2f}", f"£{amount:.2f}"))


def _phone(rng: random.Random) -> str:
    a, b, c = rng.randrange(201, 990), rng.randrange(200, 999), rng.randrange(0, 10000)
    return rng.choice((f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"+1 {a} {b} {c:04d}"))


def _tracking(rng: random.Random, *, long_numbers: bool) -> str:
    """Courier tracking numbers; `long_numbers` adds the all-digit forms (USPS 22, FedEx 12)."""
    ups = "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16))
    royal_mail = (
        "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
        + "".join(str(rng.randrange(10)) for _ in range(8))
        + "GB"
    )
    if not long_numbers:
        return rng.choice((ups, royal_mail))
    usps = (
        "9400 "
        + " ".join("".join(str(rng.randrange(10)) for _ in range(4)) for _ in range(4))
        + f" {rng.randrange(100):02d}"
    )
    fedex = "".join(str(rng.randrange(10)) for _ in range(12))
    return rng.choice((ups, royal_mail, usps, fedex))


def _fill_numbers(rng: random.Random, template: str, *, long_numbers: bool) -> str:
    values = {
        "order": str(rng.randrange(10000, 99999999)),
        "date": _date(rng),
        "date2": _date(rng),
        "price": _price(rng),
        "price2": _price(rng),
        "tracking": _tracking(rng, long_numbers=long_numbers),
        "phone": _phone(rng),
        "time": _time(rng),
        "time2": _time(rng),
        "qty": str(rng.randrange(1, 40)),
        "qty2": str(rng.randrange(1, 40)),
        "case": f"CS-{rng.randrange(100000, 9999999)}",
        "pct": str(rng.choice((5, 10, 15, 20, 25))),
        "rma": f"RMA{rng.randrange(1000, 999999)}",
        "invoice": f"INV-{rng.randrange(2024, 2026)}-{rng.randrange(1, 99999):05d}",
        "version": f"{rng.randrange(1, 9)}.{rng.randrange(0, 30)}.{rng.randrange(0, 9)}",
        "name": rng.choice(NAMES),
    }
    return template.format(**values)


def _prose(rng: random.Random) -> str:
    return rng.choice(PROSE).format(
        product=rng.choice(PRODUCTS), agent=rng.choice(AGENTS), name=rng.choice(NAMES)
    )


def _sentences(rng: random.Random, count: int, payload: str, *, long_numbers: bool) -> list[str]:
    out = []
    for _ in range(count):
        if payload != "prose" and rng.random() < 0.45:
            out.append(_fill_numbers(rng, rng.choice(NUMBERS), long_numbers=long_numbers))
        else:
            out.append(_prose(rng))
    return out


def _sensitive_line(rng: random.Random, payload: str) -> tuple[str, Planted | None]:
    if payload == "card":
        pan = make_pan(rng)
        exp = f"{rng.randrange(1, 13):02d}/{rng.randrange(26, 32)}"
        return rng.choice(CARD_LINES).format(pan=pan, exp=exp), Planted(CREDIT_CARD, pan)
    if payload == "ssn":
        ssn = make_ssn(rng)
        return rng.choice(SSN_LINES).format(ssn=ssn), Planted(US_SSN, ssn)
    return "", None


def _paragraphs(sentences: list[str], rng: random.Random) -> list[str]:
    paras, cur = [], []
    for s in sentences:
        cur.append(s)
        if len(cur) >= rng.randrange(2, 5):
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras


def _chat(rng: random.Random, body: list[str]) -> str:
    text = " ".join(body)
    if rng.random() < 0.5:
        text = f"{rng.choice(GREETINGS)}, {text}"
    if rng.random() < 0.3:
        text = text.lower()
    return text


def _wrote_line(rng: random.Random, who: str) -> str:
    day = rng.choice(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))
    mon = rng.choice(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Sep", "Oct", "Nov", "Dec"))
    hh, mm = rng.randrange(1, 13), rng.randrange(60)
    return (
        f"On {day}, {mon} {rng.randrange(1, 29)}, {rng.choice((2024, 2025))} at "
        f"{hh}:{mm:02d} {rng.choice(('AM', 'PM'))} {who} <{who.lower()}@example.com> wrote:"
    )


def _email(rng: random.Random, body: list[str], payload: str, *, long_numbers: bool) -> str:
    customer = rng.choice(NAMES)
    agent = rng.choice(AGENTS)
    lines = [f"{rng.choice(GREETINGS)} {agent},", ""]
    for para in _paragraphs(body, rng):
        lines += [para, ""]
    lines += [f"{rng.choice(SIGNOFFS)},", customer, ""]
    # Quoted history: each earlier turn one quote level deeper.
    depth_max = rng.randrange(1, 5)
    who = agent
    for depth in range(1, depth_max + 1):
        prefix = ">" * depth + " "
        lines.append(">" * (depth - 1) + (" " if depth > 1 else "") + _wrote_line(rng, who))
        turn = _sentences(rng, rng.randrange(2, 7), payload, long_numbers=long_numbers)
        for para in _paragraphs(turn, rng):
            lines.append(prefix + para)
            lines.append(prefix.rstrip())
        lines.append(prefix + f"{rng.choice(SIGNOFFS)}, {who}")
        if rng.random() < 0.4:
            lines.append(prefix + DISCLAIMER)
        who = customer if who == agent else agent
    return "\n".join(lines)


def _html(rng: random.Random, body: list[str], payload: str, *, long_numbers: bool) -> str:
    parts = [
        '<div class="message" style="font-family: Arial, sans-serif; font-size: 14px;">',
        f"<p>{rng.choice(GREETINGS)},</p>",
    ]
    parts += [f"<p>{p}</p>" for p in _paragraphs(body, rng)]
    if payload != "prose" and rng.random() < 0.5:
        parts.append('<table class="order-lines"><tr><th>Item</th><th>Qty</th><th>Price</th></tr>')
        for _ in range(rng.randrange(1, 5)):
            product = rng.choice(PRODUCTS)
            parts.append(
                f"<tr><td>{product}</td><td>{rng.randrange(1, 4)}</td><td>{_price(rng)}</td></tr>"
            )
        parts.append("</table>")
    parts.append(f"<p>{rng.choice(SIGNOFFS)},<br>{rng.choice(NAMES)}</p>")
    if rng.random() < 0.3:
        parts.append(f'<p style="color:#888;font-size:11px">{DISCLAIMER}</p>')
    parts.append("</div>")
    return "\n".join(parts)


def _message(rng: random.Random, shape: str, payload: str, *, long_numbers: bool) -> SupportMessage:
    n = {"chat": rng.randrange(1, 4), "email": rng.randrange(3, 9), "html": rng.randrange(2, 7)}
    body = _sentences(rng, n[shape], payload, long_numbers=long_numbers)
    line, planted = _sensitive_line(rng, payload)
    if line:
        body.insert(rng.randrange(len(body) + 1), line)
    if shape == "chat":
        text = _chat(rng, body)
    elif shape == "email":
        text = _email(rng, body, payload, long_numbers=long_numbers)
    else:
        text = _html(rng, body, payload, long_numbers=long_numbers)
    return SupportMessage(shape, payload, text, (planted,) if planted else ())


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    names = [n for n, _ in weighted]
    return rng.choices(names, weights=[w for _, w in weighted])[0]


def generate_mix(seed: int, count: int) -> list[SupportMessage]:
    """`count` support messages: mostly no card, some short numbers, a few cards and SSNs."""
    rng = random.Random(seed)
    return [
        _message(rng, _pick(rng, SHAPES), _pick(rng, PAYLOADS), long_numbers=True)
        for _ in range(count)
    ]


def generate_clean(seed: int, count: int) -> list[SupportMessage]:
    """`count` messages with prose and short numbers only: nothing shaped like a card or SSN."""
    rng = random.Random(seed)
    clean = (("prose", 40), ("numbers", 60))
    return [
        _message(rng, _pick(rng, SHAPES), _pick(rng, clean), long_numbers=False)
        for _ in range(count)
    ]


def summarize(messages: list[SupportMessage]) -> dict[str, object]:
    """Counts per shape and payload, and sizes: what the corpus holds, with no values."""
    sizes = sorted(len(m.text.encode("utf-8")) for m in messages)
    return {
        "messages": len(messages),
        "bytes": sum(sizes),
        "median_bytes": sizes[len(sizes) // 2] if sizes else 0,
        "max_bytes": sizes[-1] if sizes else 0,
        "shapes": dict(sorted(Counter(m.shape for m in messages).items())),
        "payloads": dict(sorted(Counter(m.payload for m in messages).items())),
        "planted": dict(sorted(Counter(p.entity for m in messages for p in m.planted).items())),
    }


def main(argv: list[str] | None = None) -> int:
    """Print a summary of the corpus; with --out, write it as JSON lines (values included)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--clean", action="store_true", help="short numbers only (corpus c)")
    ap.add_argument("--out", type=Path, help="write the corpus here as JSON lines")
    a = ap.parse_args(argv)
    build = generate_clean if a.clean else generate_mix
    messages = build(a.seed, a.count)
    if a.out:
        with a.out.open("w", encoding="utf-8") as fh:
            for i, m in enumerate(messages):
                row = {
                    "id": f"mix-{a.seed}-{i}",
                    "shape": m.shape,
                    "payload": m.payload,
                    "text": m.text,
                    "expected": [{"entity": p.entity, "value": p.value} for p in m.planted],
                }
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    # The summary names no value: the corpus itself only goes to --out.
    json.dump(summarize(messages), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
