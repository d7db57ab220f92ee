"""Issuer identification number (IIN) ranges of the card schemes, kept as data.

A digit run is only a card number when its leading digits belong to a scheme that issues cards
of that length. Each row names where the range comes from. Ranges are inclusive and compared on
prefixes of equal length, so ("2221", "2720") covers every PAN starting 2221..2720.

Sources:
  [ISO7812]  ISO/IEC 7812-1 (major industry identifier; IIN structure, 8-digit IINs since 2017).
  [WIKI]     "Payment card number", Wikipedia, IIN ranges table (retrieved 2026), which cites the
             schemes' own bulletins for each row.
  [MC2]      Mastercard, "2-series BIN expansion" (2221-2720, live since 2017).
  [DISC]     Discover Global Network, "IIN ranges" (Diners/Discover network 300-305, 3095, 36,
             38-39, 6011, 622126-622925, 644-649, 65).
  [UPI]      UnionPay International card-number rules (62, 81; 16-19 digits, 14 seen on tests).
  [NPCI]     NPCI RuPay BIN ranges (60, 65, 81, 82, 508, 353, 356).
  [NSPK]     NSPK Mir (2200-2204).
  [ELO]      Elo BIN table as published by payment processors (Adyen, Stripe test lists).
  [TROY]     BKM Troy (9792, 65 co-badged).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

_ANY_12_19 = frozenset(range(12, 20))


@dataclass(frozen=True, slots=True)
class IinRange:
    low: str
    high: str
    lengths: frozenset[int]
    scheme: str
    source: str


def _lengths(*values: int | range) -> frozenset[int]:
    out: set[int] = set()
    for v in values:
        out.update(v if isinstance(v, range) else (v,))
    return frozenset(out)


IIN_RANGES: tuple[IinRange, ...] = (
    # UATP airline cards: MII 1, always 15 digits [WIKI].
    IinRange("1", "1", _lengths(15), "UATP", "WIKI"),
    # Mir [NSPK]; BORICA 2205 [WIKI].
    IinRange("2200", "2204", _lengths(range(16, 20)), "Mir", "NSPK"),
    IinRange("2205", "2205", _lengths(16), "BORICA", "WIKI"),
    # Mastercard 2-series [MC2].
    IinRange("2221", "2720", _lengths(16), "Mastercard", "MC2"),
    # Diners Club / Discover network [DISC].
    IinRange("300", "305", _lengths(range(14, 20)), "Diners Club", "DISC"),
    IinRange("3095", "3095", _lengths(range(14, 20)), "Diners Club", "DISC"),
    IinRange("36", "36", _lengths(range(14, 20)), "Diners Club", "DISC"),
    IinRange("38", "39", _lengths(range(14, 20)), "Diners Club", "DISC"),
    # American Express [WIKI].
    IinRange("34", "34", _lengths(15), "American Express", "WIKI"),
    IinRange("37", "37", _lengths(15), "American Express", "WIKI"),
    # JCB 3528-3589; JCB also issues 3088/3096/3112/3158/3337 (legacy, 16) [WIKI].
    IinRange("3528", "3589", _lengths(range(16, 20)), "JCB", "WIKI"),
    IinRange("3088", "3088", _lengths(16), "JCB", "WIKI"),
    IinRange("3096", "3096", _lengths(16), "JCB", "WIKI"),
    IinRange("3112", "3112", _lengths(16), "JCB", "WIKI"),
    IinRange("3158", "3158", _lengths(16), "JCB", "WIKI"),
    IinRange("3337", "3337", _lengths(16), "JCB", "WIKI"),
    # JCB's legacy 15-digit ranges 2131 and 1800 (still on test-card lists) [WIKI].
    IinRange("2131", "2131", _lengths(15), "JCB", "WIKI"),
    IinRange("1800", "1800", _lengths(15), "JCB", "WIKI"),
    # Diners Club enRoute 2014 and 2149, 15 digits (issued without a Luhn digit; the ones
    # that pass Luhn are still found) [WIKI].
    IinRange("2014", "2014", _lengths(15), "Diners Club enRoute", "WIKI"),
    IinRange("2149", "2149", _lengths(15), "Diners Club enRoute", "WIKI"),
    # RuPay co-badged JCB 353/356 [NPCI]; Hipercard 3841 [WIKI]; LankaPay 357111 [WIKI].
    IinRange("353", "353", _lengths(16), "RuPay", "NPCI"),
    IinRange("356", "356", _lengths(16), "RuPay", "NPCI"),
    IinRange("3841", "3841", _lengths(16, 19), "Hipercard", "WIKI"),
    IinRange("357111", "357111", _lengths(16), "LankaPay", "WIKI"),
    # Visa: 13, 16 and 19 digits [WIKI]; Visa Electron shares the 4 range.
    IinRange("4", "4", _lengths(13, 16, 19), "Visa", "WIKI"),
    # Maestro and national debit schemes in the 50, 56-69 space: 12-19 digits [WIKI].
    IinRange("50", "50", _ANY_12_19, "Maestro", "WIKI"),
    IinRange("56", "69", _ANY_12_19, "Maestro", "WIKI"),
    # Mastercard 51-55 [WIKI]; Dankort 5019 [WIKI]; Verve 506099-506198, 507865-507964 [WIKI].
    IinRange("51", "55", _lengths(16), "Mastercard", "WIKI"),
    IinRange("5019", "5019", _lengths(16), "Dankort", "WIKI"),
    IinRange("506099", "506198", _lengths(16, 18, 19), "Verve", "WIKI"),
    IinRange("507865", "507964", _lengths(16, 18, 19), "Verve", "WIKI"),
    IinRange("508", "508", _lengths(16), "RuPay", "NPCI"),
    # Discover [DISC]; UnionPay [UPI]; RuPay 60/65 [NPCI]; Troy [TROY]; Elo [ELO]; Hipercard.
    IinRange("6011", "6011", _lengths(range(16, 20)), "Discover", "DISC"),
    IinRange("622126", "622925", _lengths(range(16, 20)), "Discover", "DISC"),
    IinRange("644", "649", _lengths(range(16, 20)), "Discover", "DISC"),
    IinRange("65", "65", _lengths(range(16, 20)), "Discover", "DISC"),
    IinRange("62", "62", _lengths(range(14, 20)), "UnionPay", "UPI"),
    IinRange("606282", "606282", _lengths(16, 19), "Hipercard", "WIKI"),
    IinRange("627780", "627780", _lengths(16), "Elo", "ELO"),
    IinRange("636297", "636297", _lengths(16), "Elo", "ELO"),
    IinRange("636368", "636368", _lengths(16), "Elo", "ELO"),
    IinRange("650031", "650051", _lengths(16), "Elo", "ELO"),
    IinRange("650405", "650439", _lengths(16), "Elo", "ELO"),
    IinRange("650485", "650598", _lengths(16), "Elo", "ELO"),
    IinRange("650700", "650727", _lengths(16), "Elo", "ELO"),
    IinRange("650901", "650978", _lengths(16), "Elo", "ELO"),
    IinRange("651652", "651679", _lengths(16), "Elo", "ELO"),
    IinRange("655000", "655058", _lengths(16), "Elo", "ELO"),
    IinRange("401178", "401179", _lengths(16), "Elo", "ELO"),
    IinRange("431274", "431274", _lengths(16), "Elo", "ELO"),
    IinRange("438935", "438935", _lengths(16), "Elo", "ELO"),
    IinRange("451416", "451416", _lengths(16), "Elo", "ELO"),
    IinRange("457393", "457393", _lengths(16), "Elo", "ELO"),
    IinRange("457631", "457632", _lengths(16), "Elo", "ELO"),
    IinRange("504175", "504175", _lengths(16), "Elo", "ELO"),
    IinRange("506699", "506778", _lengths(16), "Elo", "ELO"),
    IinRange("509000", "509999", _lengths(16), "Elo", "ELO"),
    IinRange("9792", "9792", _lengths(16), "Troy", "TROY"),
    # China T-Union 31 (19 digits); GPN (Indonesia) 1946; Napas (Vietnam) 9704; the Switch
    # debit ranges inside Visa's 4, which issued 18 digits too [WIKI].
    IinRange("31", "31", _lengths(19), "China T-Union", "WIKI"),
    IinRange("1946", "1946", _lengths(16, 18, 19), "GPN", "WIKI"),
    IinRange("9704", "9704", _lengths(16, 19), "Napas", "WIKI"),
    IinRange("4903", "4903", _lengths(16, 18, 19), "Switch", "WIKI"),
    IinRange("4905", "4905", _lengths(16, 18, 19), "Switch", "WIKI"),
    IinRange("4911", "4911", _lengths(16, 18, 19), "Switch", "WIKI"),
    IinRange("4936", "4936", _lengths(16, 18, 19), "Switch", "WIKI"),
    # UnionPay 81 [UPI]; RuPay 81-82 [NPCI]; Uzcard 8600 and Humo 9860 [WIKI].
    IinRange("81", "81", _lengths(range(14, 20)), "UnionPay", "UPI"),
    IinRange("82", "82", _lengths(16), "RuPay", "NPCI"),
    IinRange("8600", "8600", _lengths(16), "Uzcard", "WIKI"),
    IinRange("9860", "9860", _lengths(16), "Humo", "WIKI"),
)


def _index(
    ranges: tuple[IinRange, ...],
) -> dict[int, tuple[tuple[str, str, frozenset[int], str], ...]]:
    # Group by prefix width so a lookup compares one slice per width instead of every row.
    by_width: dict[int, list[tuple[str, str, frozenset[int], str]]] = {}
    for r in ranges:
        if len(r.low) != len(r.high):
            raise ValueError("IIN range bounds must have the same width")
        by_width.setdefault(len(r.low), []).append((r.low, r.high, r.lengths, r.scheme))
    return {w: tuple(rows) for w, rows in sorted(by_width.items())}


_BY_WIDTH = _index(IIN_RANGES)
# The same rows, per width, under the first digit their range can start a number with (a
# range's bounds share it, or it spans first digits: then it is listed under each): a lookup
# compares a handful of rows instead of all of them (the egress verifier weighs thousands of
# windows in a hostile body).
_BY_WIDTH_FIRST: dict[int, dict[str, tuple[tuple[str, str, frozenset[int], str], ...]]] = {
    width: {
        first: tuple(row for row in rows if row[0][0] <= first <= row[1][0])
        for first in "0123456789"
    }
    for width, rows in _BY_WIDTH.items()
}


_WIDEST = max(_BY_WIDTH)


def _two_digit_prefixes(ranges: tuple[IinRange, ...]) -> dict[int, frozenset[str]]:
    # Per length, the first two digits any range issuing that length can start with: a prefix
    # inside [low, high] starts inside [low[:2], high[:2]] (equal widths compare in order).
    out: dict[int, set[str]] = {}
    for r in ranges:
        for p in (f"{i:02d}" for i in range(100)):
            if r.low[:2] <= p[: len(r.low)] <= r.high[:2]:
                for n in r.lengths:
                    out.setdefault(n, set()).add(p)
    return {n: frozenset(ps) for n, ps in out.items()}


_STARTS = _two_digit_prefixes(IIN_RANGES)
_NONE: frozenset[str] = frozenset()


def scheme_for(digits: str) -> str | None:
    """The scheme whose IIN range and lengths fit these ASCII digits, or None."""
    if digits[:2] not in _STARTS.get(len(digits), _NONE):
        return None  # no range issues this length from these first digits
    # The answer depends only on the length and the widest prefix: cached (a table walk is
    # ~10 us, and digit-dense text asks about the same few prefixes again and again).
    return _scheme_for(digits[:_WIDEST], len(digits))


@functools.lru_cache(maxsize=16384)
def _scheme_for(digits: str, n: int) -> str | None:
    first = digits[0]
    for width, by_first in _BY_WIDTH_FIRST.items():
        prefix = digits[:width]
        for low, high, lengths, scheme in by_first.get(first, ()):
            if n in lengths and low <= prefix <= high:
                return scheme
    return None
