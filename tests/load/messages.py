"""Webhook bodies carrying known card numbers and SSNs, for the load and fault suites.

Each message is one of the vendor payload shapes (tests/data/payload_shapes) filled with a
short support text that holds freshly generated values: Luhn-valid PANs in real IIN ranges,
typed the ways people type them, and SSNs in issued ranges. Quoted history repeats an earlier
message's values, and a few messages repeat a card on purpose, so the same value arrives
concurrently in several messages (it must get one token). Everything is seeded: a run is
reproducible, and every value is known, so every byte redactor wrote can be searched for it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tests.bodies.shapes import SHAPE_BUILDERS, Item
from tests.factories import make_pan, make_ssn

# (IIN prefix, length, grouping): schemes and layouts the detector must catch in prose.
CARD_FORMS: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("4", 16, (4, 4, 4, 4)),
    ("4", 16, (16,)),
    ("51", 16, (4, 4, 4, 4)),
    ("55", 16, (4, 4, 4, 4)),
    ("2221", 16, (4, 4, 4, 4)),
    ("2720", 16, (16,)),
    ("34", 15, (4, 6, 5)),
    ("37", 15, (4, 6, 5)),
    ("6011", 16, (4, 4, 4, 4)),
    ("65", 16, (4, 4, 4, 4)),
    ("3528", 16, (4, 4, 4, 4)),
    ("36", 14, (4, 6, 4)),
    ("62", 16, (4, 4, 4, 4)),
)
SEPARATORS = (" ", "-", " ", "")
# Shapes whose text positions a JSON or form body holds plainly; e-mail shapes are in too.
SHAPES = tuple(sorted(SHAPE_BUILDERS))
# Message ids start with it (the X-Load-Message header carries them to the upstream).
MARK = "loadmsg"


@dataclass(frozen=True)
class Value:
    """A known value: how it was typed and its digits."""

    typed: str
    digits: str
    kind: str  # "card" or "ssn"


@dataclass(frozen=True)
class Message:
    """One webhook: id, shape, body, content type, and every value its bytes hold."""

    id: str
    shape: str
    body: bytes
    content_type: str
    values: tuple[Value, ...]  # its own values and those of the quoted message

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, "X-Load-Message": self.id}


def _card(rng: random.Random) -> Value:
    prefix, length, grouping = rng.choice(CARD_FORMS)
    digits = make_pan(prefix, length, rng)
    sep = rng.choice(SEPARATORS) if len(grouping) > 1 else ""
    parts, pos = [], 0
    for size in grouping:
        parts.append(digits[pos : pos + size])
        pos += size
    return Value(sep.join(parts), digits, "card")


def _ssn(rng: random.Random) -> Value:
    digits = make_ssn(rng)
    typed = rng.choice(
        (f"{digits[:3]}-{digits[3:5]}-{digits[5:]}", f"{digits[:3]} {digits[3:5]} {digits[5:]}")
    )
    return Value(typed, digits, "ssn")


_OPENERS = (
    "Hi, I was charged twice for order ORD-{order} and need one refunded.",
    "Hello team, my subscription renewal failed on {when} and I want to update my payment.",
    "Good morning, the invoice for {price} looks wrong, can you check it?",
)
_CLOSERS = ("Thanks, Ada", "Regards,\nAda Customer", "Cheers")


def _text(rng: random.Random, values: Iterable[Value]) -> str:
    lines = [
        rng.choice(_OPENERS).format(
            order=rng.randint(10000, 99999),
            when=f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}",
            price=f"${rng.randint(5, 400)}.{rng.randint(0, 99):02d}",
        )
    ]
    for value in values:
        if value.kind == "card":
            lines.append(f"The card I used is {value.typed}, expiry 09/29.")
        else:
            lines.append(f"My SSN is {value.typed} if you need to verify me.")
    lines.append(rng.choice(_CLOSERS))
    return "\n".join(lines)


def generate(
    count: int, seed: int, *, shapes: tuple[str, ...] = SHAPES, prefix: str = MARK
) -> list[Message]:
    """`count` messages with fresh known values (about 1 in 10 repeats an earlier card),
    with ids `prefix` + a number (letters only in `prefix`: an id is never a value)."""
    rng = random.Random(seed)
    items: list[tuple[Item, tuple[Value, ...]]] = []
    messages: list[Message] = []
    seen_cards: list[Value] = []
    for n in range(count):
        own = [_card(rng)]
        if rng.random() < 0.5:
            own.append(_ssn(rng))
        if rng.random() < 0.3:
            own.append(_card(rng))
        if seen_cards and rng.random() < 0.1:
            own.append(rng.choice(seen_cards))  # the same card again, maybe at the same time
        seen_cards.extend(v for v in own if v.kind == "card")
        item = Item(f"{prefix}{n:06d}", _text(rng, own), tuple(v.typed for v in own))
        previous, prev_values = items[-1] if items else (item, tuple(own))
        shape = SHAPES[n % len(SHAPES)] if shapes == SHAPES else shapes[n % len(shapes)]
        filled = SHAPE_BUILDERS[shape](item, previous)
        values = _unique((*own, *prev_values))
        messages.append(Message(item.id, shape, filled.body, filled.content_type, values))
        items.append((item, tuple(own)))
    return messages


def _unique(values: Iterable[Value]) -> tuple[Value, ...]:
    out: dict[str, Value] = {}
    for v in values:
        out.setdefault(v.digits, v)
    return tuple(out.values())


def known_digits(messages: Iterable[Message]) -> set[str]:
    """The digits of every value any message holds."""
    return {v.digits for m in messages for v in m.values}


_DIGIT_RUN = re.compile(rb"[0-9](?:[\s.\-/]{0,3}[0-9])*")


def find_known(data: bytes, known: set[str]) -> Iterator[str]:
    """Every known value whose digits appear in `data`, separators between digits allowed.

    Reads the bytes as ASCII, and as UTF-16 in either byte order (a database page may hold
    text that way), so neither a grouping nor an encoding hides a value.
    """
    lengths = sorted({len(k) for k in known})
    views = [data]
    for codec in ("utf-16-le", "utf-16-be"):
        for start in (0, 1):
            chunk = data[start:]
            text = chunk[: len(chunk) - len(chunk) % 2].decode(codec, errors="ignore")
            views.append(text.encode("ascii", errors="replace"))
    for view in views:
        for run in _DIGIT_RUN.finditer(view):
            digits = re.sub(rb"[^0-9]", b"", run.group()).decode()
            if len(digits) < lengths[0]:
                continue
            for size in lengths:
                for start in range(len(digits) - size + 1):
                    if digits[start : start + size] in known:
                        yield digits[start : start + size]
