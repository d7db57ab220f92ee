"""Which digit runs, or which parts of them, are shaped like a card number or an SSN.

Pure rules, no context words (see `context.py`) and no scores (see `recognizers.py`):

- CREDIT_CARD: 12-19 digits, Luhn-valid, with an IIN that issues that length (`iin.py`).
  Grouped forms need at least three groups (or two split by a line break) whose groups, but
  the last, have 3+ digits: `4111 1111 1111 1111`, `3714 496353 98431`, `4012 8888 18888`.
- US_SSN: `AAA-GG-SSSS` with one repeated separator (dash, space or dot), or 9 bare digits.
  Area 000, 666 and 900-999, group 00 and serial 0000 are never issued (SSA, "Social Security
  Number Randomization", 2011), so they are never SSNs.

A run is judged whole first. Only when the whole is neither does a part of it count, and only
when something marks the edge of that part: a line break, a separator of another kind than the
part's own (`Order 10877. 4111 1111 1111 1111`), or one short trailing/leading group such as
an expiry or CVV (`4111 1111 1111 1111 12/27`). A 16-digit window in the middle of a uniformly
grouped 20- or 22-digit tracking number or IBAN is therefore never a card.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redactor.detection.digit_runs import DigitRun, SepKind
from redactor.detection.iin import scheme_for

CREDIT_CARD = "CREDIT_CARD"
US_SSN = "US_SSN"

# The groupings card schemes print (Visa/Mastercard 4-4-4-4, Amex 4-6-5, Diners 4-6-4,
# 19-digit 4-4-4-4-3): only these may stand next to a short extra group of the same kind.
STANDARD_GROUPINGS = frozenset({(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3)})


@dataclass(frozen=True, slots=True)
class Candidate:
    entity: str
    start: int
    end: int
    digits: str = field(repr=False)
    group_count: int
    scheme: str | None = None
    # False for a 16-digit number in a card's shape that fails the Luhn check: a typo'd card
    # number still shows 15 of its 16 digits. Reported only when policy asks (options.py).
    luhn_ok: bool = True


def luhn_valid(digits: str) -> bool:
    """ISO/IEC 7812-1 Annex B check digit (the Luhn formula) over ASCII digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def ssn_structure_valid(digits: str) -> bool:
    """Area, group and serial fall in ranges the SSA issues."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _card(run: DigitRun, i: int, j: int, *, require_luhn: bool = True) -> Candidate | None:
    groups = run.groups[i:j]
    digits = "".join(g.digits for g in groups)
    if not 12 <= len(digits) <= 19:
        return None
    count = j - i
    if count == 2 and run.seps[i] is not SepKind.NEWLINE:
        # `1355517523.000005` (a Slack timestamp) or `12345678 12345678`: a decimal or two
        # numbers, not a card someone grouped.
        return None
    if count > 2 and any(len(g.digits) < 3 for g in groups[:-1]):
        # `7 9 0 5 3 5 3 1 2 3 1 7`, `06 12 34 56 78 90 12`: spelled-out or phone formatting.
        return None
    luhn_ok = luhn_valid(digits)
    if not luhn_ok and require_luhn:
        return None
    scheme = scheme_for(digits)
    if scheme is None:
        return None
    return Candidate(CREDIT_CARD, groups[0].start, groups[-1].end, digits, count, scheme, luhn_ok)


def _ssn(run: DigitRun, i: int, j: int) -> Candidate | None:
    groups = run.groups[i:j]
    count = j - i
    if count == 1:
        if len(groups[0].digits) != 9:
            return None
    elif count == 3:
        if tuple(len(g.digits) for g in groups) != (3, 2, 4):
            return None
        first_sep, second_sep = run.sep_texts[i], run.sep_texts[i + 1]
        # One separator, repeated: `123-45 6789` is not an SSN, nor is one split over lines.
        if first_sep != second_sep or run.seps[i] is SepKind.NEWLINE:
            return None
    else:
        return None
    digits = "".join(g.digits for g in groups)
    if not ssn_structure_valid(digits):
        return None
    return Candidate(US_SSN, groups[0].start, groups[-1].end, digits, count)


def _classify(run: DigitRun, i: int, j: int) -> Candidate | None:
    if any(g.tainted for g in run.groups[i:j]):
        return None
    return _card(run, i, j) or _ssn(run, i, j)


def _edge_is_break(run: DigitRun, i: int, j: int, sep_index: int) -> bool:
    kind = run.seps[sep_index]
    if kind is SepKind.NEWLINE:
        return True
    if j - i == 1:
        # A lone long number next to others by a plain space: `order 12345 4111111111111111`.
        return kind is SepKind.SPACE
    inner = set(run.seps[i : j - 1])
    return kind not in inner


def _short_extra_group(run: DigitRun, i: int, j: int, lo: int, hi: int) -> bool:
    """True when [i, j) is a standard grouping and [lo, hi) adds one short group at one end."""
    if (i, j) == (lo + 1, hi):
        extra, boundary = run.groups[lo], run.seps[lo]
    elif (i, j) == (lo, hi - 1):
        extra, boundary = run.groups[hi - 1], run.seps[hi - 2]
    else:
        return False
    sizes = tuple(len(g.digits) for g in run.groups[i:j])
    inner = set(run.seps[i : j - 1])
    if sizes not in STANDARD_GROUPINGS or len(inner) != 1:
        return False
    if len(extra.digits) > 4:
        return False
    # A fifth 4-digit group joined the same way continues the number (a 20-digit tracking
    # number printed 4-4-4-4-4); a 2- or 3-digit one is an expiry or a CVV.
    return len(extra.digits) != 4 or boundary not in inner


def _part_allowed(run: DigitRun, i: int, j: int, lo: int, hi: int) -> bool:
    left = i == lo or _edge_is_break(run, i, j, i - 1)
    right = j == hi or _edge_is_break(run, i, j, j - 1)
    return (left and right) or _short_extra_group(run, i, j, lo, hi)


def _find(run: DigitRun, lo: int, hi: int) -> list[Candidate]:
    if lo >= hi:
        return []
    whole = _classify(run, lo, hi)
    if whole is not None:
        return [whole]
    best: tuple[int, int, Candidate] | None = None
    for i in range(lo, hi):
        if run.groups[i].tainted:
            continue
        total = 0
        for j in range(i + 1, hi + 1):
            g = run.groups[j - 1]
            if g.tainted:
                break
            total += len(g.digits)
            if total > 19:
                break
            if total < 9 or (i, j) == (lo, hi) or not _part_allowed(run, i, j, lo, hi):
                continue
            cand = _classify(run, i, j)
            # Prefer the longest part, then the earliest.
            if cand is not None and (best is None or len(cand.digits) > len(best[2].digits)):
                best = (i, j, cand)
    if best is None:
        return []
    i, j, cand = best
    # A part found delimits its neighbours: what is left on each side is judged afresh.
    return [*_find(run, lo, i), cand, *_find(run, j, hi)]


def _luhn_failing_card(run: DigitRun) -> Candidate | None:
    # Only a whole run of exactly 16 digits, plain or 4-4-4-4: the shape in which a typo'd
    # card number is still unmistakably a card number.
    sizes = tuple(len(g.digits) for g in run.groups)
    if sizes not in ((16,), (4, 4, 4, 4)) or any(g.tainted for g in run.groups):
        return None
    return _card(run, 0, len(run.groups), require_luhn=False)


def find_candidates(run: DigitRun) -> list[Candidate]:
    """The card and SSN candidates in one digit run, non-overlapping, in text order.

    A run with none may still give one card candidate with `luhn_ok=False`.
    """
    found = _find(run, 0, len(run.groups))
    if not found:
        typo = _luhn_failing_card(run)
        if typo is not None:
            return [typo]
    return found
