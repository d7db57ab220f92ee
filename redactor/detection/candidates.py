"""Which digit runs, or which parts of them, are shaped like a card number or an SSN.

Pure rules, no context words (see `context.py`) and no scores (see `recognizers.py`):

- CREDIT_CARD: 12-19 digits, Luhn-valid, with an IIN that issues that length (`iin.py`).
  A whole run may be grouped any way, as long as it is grouped consistently (`41 11 11 ...`,
  `4 1 1 1 ...`, 4-12, 2-3-7-3); a part of a run needs a card-like grouping: at least three
  groups (or two split by a line break) whose groups, but the last, have 3+ digits.
  When nothing stricter is found, a whole run may still give a weak card candidate that the
  evidence table (`evidence.py`) decides on: Luhn-valid with an IIN outside the table, or a
  card-shaped number that fails the Luhn check.
- US_SSN: `AAA-GG-SSSS` with one repeated separator (dash, space or dot), or 9 bare digits;
  or its three groups each on a line of their own (table cells, one `<div>` per line: grouping
  "lines", which the evidence table reports only with an SSN word, see evidence.py).
  Area 000, 666 and 900-999, group 00 and serial 0000 are never issued (SSA, "Social Security
  Number Randomization", 2011), so they are never SSNs.

A run is judged whole first. Only when the whole is neither does a part of it count, and only
when something marks the edge of that part: a line break, a separator of another kind than the
part's own (`Order 10877. 4111 1111 1111 1111`), or one short trailing/leading group such as
an expiry or CVV, or an expiry date and a CVV (`4111 1111 1111 1111 03 2027 123`). A 16-digit
window in the middle of a uniformly grouped 20- or 22-digit tracking number or IBAN is
therefore never a card, and a bare 9-digit group inside a longer run is an SSN only on a line
of its own (the middle group of `12345 536904399 12345` is not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from redactor.detection.digit_runs import DigitRun, Group, SepKind
from redactor.detection.iin import scheme_for

CREDIT_CARD = "CREDIT_CARD"
US_SSN = "US_SSN"

# The groupings card schemes print (Visa/Mastercard 4-4-4-4, Amex 4-6-5, Diners 4-6-4,
# 19-digit 4-4-4-4-3): only these may stand next to a short extra group of the same kind.
STANDARD_GROUPINGS = frozenset({(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3)})


# Built for many digit runs of digit-dense messages: a plain slotted class (frozen construction
# costs three times as much). Treat it as immutable all the same.
@dataclass(slots=True)
class Candidate:
    entity: str
    start: int
    end: int
    digits: str = field(repr=False)
    group_count: int
    scheme: str | None = None
    # False for a card-shaped number that fails the Luhn check: a typo'd card number still
    # shows all its digits but one. The evidence table decides (evidence.py).
    luhn_ok: bool = True
    # How the digits are grouped: "plain" (one group), "standard" (a grouping schemes print,
    # 4-4-4-4, 4-6-5, ...; AAA-GG-SSSS), "lines" (an SSN's groups on three lines) or "other".
    grouping: str = "plain"
    # Facts about the run around it (digit_runs.py).
    glued_card_word: bool = False
    url_path: bool = False
    url_card_label: bool = False


_DOUBLED = str.maketrans("0123456789", "0246813579")


def luhn_valid(digits: str) -> bool:
    """ISO/IEC 7812-1 Annex B check digit (the Luhn formula) over ASCII digits."""
    # Every second digit from the right doubled (digit sums of 2d are 0 2 4 6 8 1 3 5 7 9):
    # the byte sum of ASCII digits is their sum plus 48 each, all in C.
    kept = digits[-1::-2]
    doubled = digits[-2::-2].translate(_DOUBLED)
    return (sum(kept.encode()) + sum(doubled.encode()) - 48 * len(digits)) % 10 == 0


def ssn_structure_valid(digits: str) -> bool:
    """Area, group and serial fall in ranges the SSA issues."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _grouping(groups: tuple[Group, ...]) -> str:
    if len(groups) == 1:
        return "plain"
    sizes = tuple(len(g.digits) for g in groups)
    return "standard" if sizes in STANDARD_GROUPINGS else "other"


def _grouping_allowed(run: DigitRun, i: int, j: int, whole: bool) -> bool:
    groups = run.groups[i:j]
    count = j - i
    if whole:
        # Any consistent grouping of a whole run: pairs, singles, 4-12, 2-3-7-3. Not a decimal
        # (`1355517523.000005`, a Slack timestamp) and not mixed separators with short groups.
        if count == 2:
            return run.seps[i] is not SepKind.DOT
        return all(len(g.digits) >= 3 for g in groups[:-1]) or (
            len(set(run.sep_texts[i : j - 1])) == 1
        )
    if count == 2:
        # `12345678 12345678` inside a longer run: two numbers, not a card someone grouped.
        return run.seps[i] is SepKind.NEWLINE
    # `7 9 0 5 3 5 3 1 2 3 1 7`, `06 12 34 56 78 90 12` inside a longer run: spelled-out or
    # phone formatting.
    return count < 3 or all(len(g.digits) >= 3 for g in groups[:-1])


def _card(run: DigitRun, i: int, j: int, *, whole: bool, strict: bool = True) -> Candidate | None:
    groups = run.groups[i:j]
    digits = "".join(g.digits for g in groups)
    if not 12 <= len(digits) <= 19 or not _grouping_allowed(run, i, j, whole):
        return None
    luhn_ok = luhn_valid(digits)
    if strict and not luhn_ok:
        return None
    scheme = scheme_for(digits)
    if strict and scheme is None:
        return None
    return Candidate(
        CREDIT_CARD,
        groups[0].start,
        groups[-1].end,
        digits,
        j - i,
        scheme,
        luhn_ok,
        _grouping(groups),
        run.glued_card_word,
        run.url_path,
        run.url_card_label,
    )


def _ssn(run: DigitRun, i: int, j: int) -> Candidate | None:
    groups = run.groups[i:j]
    count = j - i
    newlines = False
    if count == 1:
        if len(groups[0].digits) != 9:
            return None
    elif count == 3:
        if tuple(len(g.digits) for g in groups) != (3, 2, 4):
            return None
        first_sep, second_sep = run.sep_texts[i], run.sep_texts[i + 1]
        newlines = run.seps[i] is SepKind.NEWLINE and run.seps[i + 1] is SepKind.NEWLINE
        # One separator, repeated: `123-45 6789` is not an SSN, nor is `123-45\n6789`. Three
        # lines (`536\n90\n4399`: table cells) are weighed, and kept without an SSN word.
        if not newlines and (first_sep != second_sep or run.seps[i] is SepKind.NEWLINE):
            return None
    else:
        return None
    digits = "".join(g.digits for g in groups)
    if not ssn_structure_valid(digits):
        return None
    grouping = "plain" if count == 1 else "lines" if newlines else "standard"
    return Candidate(
        US_SSN,
        groups[0].start,
        groups[-1].end,
        digits,
        count,
        None,
        True,
        grouping,
        False,
        run.url_path,
    )


def _classify(run: DigitRun, i: int, j: int, *, whole: bool) -> Candidate | None:
    if any(g.tainted for g in run.groups[i:j]):
        return None
    card = _card(run, i, j, whole=whole)
    if card is not None:
        # Inside a longer run, an odd grouping (`7179-6514\n0128 3361` holds a 4-4-4 Maestro
        # shape) is a card only on a line of its own.
        if whole or card.grouping != "other" or _on_own_line(run, i, j):
            return card
        return None
    ssn = _ssn(run, i, j)
    if ssn is not None and not whole and ssn.group_count == 1 and not _on_own_line(run, i, j):
        # A bare 9-digit group inside a longer run (the middle group of a 19-digit number) is
        # part of that number, unless it stands on a line of its own.
        return None
    return ssn


def _on_own_line(run: DigitRun, i: int, j: int) -> bool:
    return (i == 0 or run.seps[i - 1] is SepKind.NEWLINE) and (
        j == len(run.groups) or run.seps[j - 1] is SepKind.NEWLINE
    )


def _edge_is_break(run: DigitRun, i: int, j: int, sep_index: int) -> bool:
    kind = run.seps[sep_index]
    if kind is SepKind.NEWLINE:
        return True
    if j - i == 1:
        # A lone long number next to others by a plain space: `order 12345 4111111111111111`.
        return kind is SepKind.SPACE
    inner = set(run.seps[i : j - 1])
    return kind not in inner


def _is_month(g: Group) -> bool:
    return len(g.digits) <= 2 and 1 <= int(g.digits) <= 12


def _expiry_tail(tail: tuple[Group, ...], boundary: SepKind, inner: set[SepKind]) -> bool:
    """True when `tail` reads as an expiry, a CVV, or an expiry then a CVV."""
    if len(tail) == 1:
        size = len(tail[0].digits)
        # A fifth 4-digit group joined the same way continues the number (a 20-digit tracking
        # number printed 4-4-4-4-4); a 2- or 3-digit one is an expiry or a CVV.
        return size <= 3 or (size == 4 and boundary not in inner)
    month, year = tail[0], tail[1]
    if not _is_month(month) or len(year.digits) not in (2, 4):
        return False
    return len(tail) == 2 or (len(tail) == 3 and len(tail[2].digits) in (3, 4))


def _short_extra_group(run: DigitRun, i: int, j: int, lo: int, hi: int) -> bool:
    """True when [i, j) is a standard grouping, or one number, and [lo, hi) adds one short
    group before it, or an expiry and/or CVV after it (`... 1111 03 2027`, `... 1111 3-27`)."""
    sizes = tuple(len(g.digits) for g in run.groups[i:j])
    inner = set(run.seps[i : j - 1])
    printed = sizes in STANDARD_GROUPINGS and len(inner) == 1
    if not printed and not (len(sizes) == 1 and sizes[0] >= 13):
        return False
    if (i, j) == (lo + 1, hi):
        extra = run.groups[lo]
        return len(extra.digits) <= 3 or (len(extra.digits) == 4 and run.seps[lo] not in inner)
    if i == lo and 1 <= hi - j <= 3:
        return _expiry_tail(run.groups[j:hi], run.seps[j - 1], inner)
    return False


def _part_allowed(run: DigitRun, i: int, j: int, lo: int, hi: int) -> bool:
    left = i == lo or _edge_is_break(run, i, j, i - 1)
    right = j == hi or _edge_is_break(run, i, j, j - 1)
    return (left and right) or _short_extra_group(run, i, j, lo, hi)


def _rank(cand: Candidate) -> tuple[bool, int]:
    return cand.grouping != "other", len(cand.digits)


def _find(run: DigitRun, lo: int, hi: int) -> list[Candidate]:
    if lo >= hi:
        return []
    whole = _classify(run, lo, hi, whole=(lo, hi) == (0, len(run.groups)))
    if whole is not None and (
        whole.grouping != "other" or len(set(run.sep_texts[lo : hi - 1])) == 1
    ):
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
            cand = _classify(run, i, j, whole=False)
            # Prefer a part in a printed grouping, then the longest, then the earliest.
            if cand is not None and (best is None or _rank(cand) > _rank(best[2])):
                best = (i, j, cand)
    if best is None or (
        whole is not None and (best[2].grouping == "other" or hi - lo - best[2].group_count < 2)
    ):
        # An oddly grouped whole run is a card unless a card in a printed grouping with an
        # expiry date after it (`6011 4520 0281 5766 1-27`) reads better.
        return [whole] if whole is not None else []
    i, j, cand = best
    # A part found delimits its neighbours: what is left on each side is judged afresh.
    return [*_find(run, lo, i), cand, *_find(run, j, hi)]


def _placeholder(digits: str) -> bool:
    # `0000 0000 0000 0000`, `1234 5678 9012 3456`: what forms and docs print as a sample.
    return len(set(digits)) == 1 or digits == ("1234567890" * 2)[: len(digits)]


def _weak_card(run: DigitRun) -> Candidate | None:
    # A whole run of 13-19 digits that is Luhn-valid but outside the IIN table, or card-shaped
    # (one number, or a grouping schemes print) and Luhn-failing: the evidence decides.
    if not 13 <= run.digit_count <= 19 or any(g.tainted for g in run.groups):
        return None
    cand = _card(run, 0, len(run.groups), whole=True, strict=False)
    if cand is None or len(cand.digits) < 13 or _placeholder(cand.digits):
        return None
    if not cand.luhn_ok and (
        cand.grouping == "other" or (cand.scheme is None and len(cand.digits) != 16)
    ):
        # Card-shaped: a card's grouping, and a length its scheme issues (or 16, the length of
        # most cards, for a typo in the first digits). `411111111111111` (15) is not.
        return None
    return cand


def find_candidates(run: DigitRun) -> list[Candidate]:
    """The card and SSN candidates in one digit run, non-overlapping, in text order.

    A run with none may still give one weak card candidate (see `_weak_card`).
    """
    found = _find(run, 0, len(run.groups))
    if not found:
        weak = _weak_card(run)
        if weak is not None:
            return [weak]
    return found


def run_may_give_candidate(sizes: Sequence[int], digits: str) -> bool:
    """False only when `find_candidates` gives nothing for any digit run with these group
    sizes and these (ASCII) digits, whatever its separators, taint and URL facts.

    For the text screen (screen.py): a necessary condition of every candidate, read off the
    rules above. A candidate is a run of consecutive groups (`_classify`) that is
    - a strict card: 12-19 digits, Luhn-valid, with an IIN that issues that length;
    - an SSN: one group of 9 digits, or groups of 3, 2 and 4, in the SSA's ranges;
    or the whole run as a weak card (`_weak_card`): 13-19 digits, no placeholder, and
    Luhn-valid or (when it fails) in one group or a printed grouping with a scheme's prefix
    and length, or 16 digits.
    Separators, taint, URL segments and the grouping rules only ever take candidates away,
    so they are not asked.
    """
    n = len(digits)
    count = len(sizes)
    if 13 <= n <= 19 and not _placeholder(digits):
        if luhn_valid(digits):
            return True
        printed = count == 1 or tuple(sizes) in STANDARD_GROUPINGS
        if printed and (n == 16 or scheme_for(digits) is not None):
            return True
    start = 0
    for i in range(count):
        total = 0
        for j in range(i, count):
            total += sizes[j]
            if total > 19:
                break
            if total == 9:
                shaped = j == i or (j == i + 2 and tuple(sizes[i : j + 1]) == (3, 2, 4))
                if shaped and ssn_structure_valid(digits[start : start + 9]):
                    return True
            elif total >= 12:
                part = digits[start : start + total]
                if luhn_valid(part) and scheme_for(part) is not None:
                    return True
        start += sizes[i]
    return False
