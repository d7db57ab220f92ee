"""The evidence table: what speaks for and against each candidate, and the decision.

A candidate (`candidates.py`) carries what its digits and shape say; its context
(`context.py`) what the words around say. `decide` lists both as named evidence and walks one
table per entity, first matching row wins. The README shows the same tables in words.

CREDIT_CARD
  1. a whole URL path segment (`/tickets/4111111111111111`), not labelled by a card word -> no
  2. another identifier's label in front, no card grouping and no glued card word, and
     the label attached to the number or no card word in the clause, unless the number is
     15-16 digits, Luhn and IIN valid, and the label's identifier cannot have its length
     (a generic label: order, ticket, id; not an IMEI, nor a phone at 15 digits)          -> no
  3. Luhn and IIN valid, but in phone/other-id context with a grouping no scheme prints
     and no card word in the clause                                                      -> no
  4. Luhn and IIN valid                                                                  -> yes
  5. Luhn valid, IIN outside the table, with a card word, a glued card word or a 4-4-4-4
     style grouping, and no other identifier's words in the clause                       -> yes
  6. Luhn fails, card-shaped, right after a card word in the clause (or a payment word,
     when grouped as schemes print it with a scheme's prefix and length), no other
     identifier's label, not called invalid or a test value, policy keeps the default    -> yes
  7. anything else                                                                       -> no
US_SSN
  1. a whole URL path segment                                                            -> no
  2. another identifier's or an account's label in front, attached to the number or
     with no SSN word in the clause                                                      -> no
  3. AAA-GG-SSSS with one separator                                                      -> yes
  4. 9 bare digits with an SSN word around                                               -> yes
  5. 9 bare digits with another identifier's or phone words in the clause                -> no
  6. 9 bare digits, and policy asks for an SSN word                                      -> no
  7. 9 bare digits                                                                       -> yes
Where two rules conflict, the one that redacts wins, except where the text names another kind
of identifier (a label or a URL path): rows that say so come first.
"""

from __future__ import annotations

from dataclasses import dataclass

from redactor.detection.candidates import Candidate
from redactor.detection.context import ACCOUNT_LABEL, OTHER_LABEL, Context
from redactor.detection.findings import CREDIT_CARD
from redactor.detection.options import DetectionOptions

# Scores. A well-formed 15/16-digit PAN is a card with or without context words; other
# lengths (12-14, 17-19) and bare 9-digit SSNs are likelier to be something else, so they
# start lower and context lifts them.
CARD_COMMON_LENGTH_SCORE = 0.85
CARD_OTHER_LENGTH_SCORE = 0.6
CARD_WEAK_SCORE = 0.5
SSN_GROUPED_SCORE = 0.85
SSN_BARE_WITH_CONTEXT_SCORE = 0.85
SSN_BARE_SCORE = 0.5
CONTEXT_BOOST = 0.15


@dataclass(frozen=True, slots=True)
class Decision:
    report: bool
    score: float
    # Names of the evidence found, for `redactor detect --explain`: never a value.
    evidence_for: tuple[str, ...]
    evidence_against: tuple[str, ...]
    rule: str


def card_evidence(cand: Candidate, ctx: Context) -> tuple[list[str], list[str]]:
    """Names of what speaks for and against a card candidate."""
    pro: list[str] = []
    con: list[str] = []
    pro.append("luhn") if cand.luhn_ok else con.append("luhn-fails")
    pro.append("iin") if cand.scheme else con.append("iin-unknown")
    if cand.grouping == "standard":
        pro.append("card-grouping")
    elif cand.grouping == "other":
        con.append("odd-grouping")
    if ctx.card_word_in_clause:
        pro.append("card-word")
    elif ctx.payment_word_in_clause:
        pro.append("payment-word")
    elif ctx.supports_card:
        pro.append("card-word-nearby")
    if cand.glued_card_word:
        pro.append("glued-card-word")
    if cand.url_card_label:
        pro.append("url-card-label")
    if cand.url_path:
        con.append("url-path")
    if ctx.rules_out_card:
        con.append("other-label")
    elif ctx.label == OTHER_LABEL:
        con.append("unattached-label")
    if ctx.other_in_clause:
        con.append("other-context")
    if ctx.called_invalid:
        con.append("called-invalid")
    return pro, con


def ssn_evidence(cand: Candidate, ctx: Context) -> tuple[list[str], list[str]]:
    """Names of what speaks for and against an SSN candidate."""
    pro = ["ssa-ranges", "separated" if cand.group_count == 3 else "bare-9-digits"]
    con: list[str] = []
    if ctx.ssn_word_in_clause:
        pro.append("ssn-word")
    elif ctx.supports_ssn:
        pro.append("ssn-word-nearby")
    if cand.url_path:
        con.append("url-path")
    if ctx.rules_out_ssn:
        con.append("account-label" if ctx.label == ACCOUNT_LABEL else "other-label")
    elif ctx.label in (OTHER_LABEL, ACCOUNT_LABEL):
        con.append("unattached-label")
    if ctx.other_in_clause:
        con.append("other-context")
    return pro, con


def _strong_card(cand: Candidate) -> bool:
    # Issue 18, item 11: the evidence a generic label (order, ticket, id) never outweighs.
    return cand.luhn_ok and cand.scheme is not None and len(cand.digits) in (15, 16)


def _decide_card(
    cand: Candidate, ctx: Context, options: DetectionOptions
) -> tuple[bool, float, str]:
    # Conditions on the candidate come before those on its context: context is read lazily
    # (context.py), and a card in a scheme's grouping needs little of it.
    if cand.url_path and not cand.url_card_label:
        return False, 0.0, "card.1 url path segment"
    if (
        cand.grouping != "standard"
        and not cand.glued_card_word
        and ctx.rules_out_card
        and not (_strong_card(cand) and not ctx.label_fits(len(cand.digits)))
    ):
        return False, 0.0, "card.2 another identifier's label"
    boost = CONTEXT_BOOST if cand.glued_card_word or ctx.supports_card else 0.0
    if cand.luhn_ok and cand.scheme:
        if (
            cand.grouping == "other"
            and not cand.glued_card_word
            and ctx.other_in_clause
            and not ctx.card_word_in_clause
        ):
            return False, 0.0, "card.3 odd grouping in another identifier's context"
        common = len(cand.digits) in (15, 16)
        score = CARD_COMMON_LENGTH_SCORE if common else CARD_OTHER_LENGTH_SCORE
        return True, score + boost, "card.4 luhn and iin valid"
    if cand.luhn_ok:
        grouped = cand.grouping == "standard" and len(cand.digits) == 16
        card_word = cand.glued_card_word or ctx.card_word_in_clause
        if (card_word or grouped) and not ctx.other_in_clause:
            return True, CARD_WEAK_SCORE + boost, "card.5 luhn valid, card evidence"
        return False, 0.0, "card.7 luhn valid, iin unknown, no card evidence"
    # A typo'd card: named by a card word, or printed as a scheme's card in a payment clause.
    named = ctx.card_word_in_clause or (
        ctx.payment_word_in_clause and cand.grouping == "standard" and cand.scheme is not None
    )
    if (
        options.luhn_invalid_with_card_word
        and named
        and not ctx.rules_out_card
        and not ctx.called_invalid
        and cand.grouping != "other"
    ):
        return True, CARD_WEAK_SCORE, "card.6 luhn fails right after a card word"
    return False, 0.0, "card.7 luhn fails"


def _decide_ssn(
    cand: Candidate, ctx: Context, options: DetectionOptions
) -> tuple[bool, float, str]:
    if cand.url_path:
        return False, 0.0, "ssn.1 url path segment"
    if ctx.rules_out_ssn:
        return False, 0.0, "ssn.2 another identifier's label"
    if cand.grouping == "lines":
        # Three cells or lines of 3, 2 and 4 digits: a table of codes and quantities has
        # them too. An SSN only where an SSN word says so (a reader joins the cells then).
        if ctx.ssn_word_in_clause or ctx.supports_ssn:
            return True, SSN_BARE_WITH_CONTEXT_SCORE, "ssn.3b over lines with an ssn word"
        return False, 0.0, "ssn.3c over lines without an ssn word"
    if cand.group_count == 3:
        boost = CONTEXT_BOOST if ctx.supports_ssn else 0.0
        return True, SSN_GROUPED_SCORE + boost, "ssn.3 separated"
    if ctx.ssn_word_in_clause or (ctx.supports_ssn and not ctx.other_in_clause):
        return True, SSN_BARE_WITH_CONTEXT_SCORE, "ssn.4 bare with an ssn word"
    if ctx.other_in_clause:
        return False, 0.0, "ssn.5 bare in another identifier's context"
    if options.bare_ssn_needs_context:
        return False, 0.0, "ssn.6 bare, policy asks for an ssn word"
    return True, SSN_BARE_SCORE, "ssn.7 bare"


def decide(cand: Candidate, ctx: Context, options: DetectionOptions) -> Decision:
    """Whether `cand` is reported, with which score, the row that decided and the evidence."""
    if cand.entity == CREDIT_CARD:
        pro, con = card_evidence(cand, ctx)
        report, score, rule = _decide_card(cand, ctx, options)
    else:
        pro, con = ssn_evidence(cand, ctx)
        report, score, rule = _decide_ssn(cand, ctx, options)
    return Decision(report, round(min(score, 1.0), 2), tuple(pro), tuple(con), rule)


def decide_score(cand: Candidate, ctx: Context, options: DetectionOptions) -> float | None:
    """The score `cand` is reported with, or None: `decide` without naming the evidence (the
    recognizers' hot path)."""
    if cand.entity == CREDIT_CARD:
        report, score, _ = _decide_card(cand, ctx, options)
    else:
        report, score, _ = _decide_ssn(cand, ctx, options)
    return round(min(score, 1.0), 2) if report else None
