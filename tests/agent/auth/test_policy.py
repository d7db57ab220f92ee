"""Reveal policy: the shipped example loads, bad edits name file and line, decisions follow the
rules (tenant walls, highest role, purpose, ticket, rate limit)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from redactor.agent.policy import (
    Decision,
    Level,
    Policy,
    PolicyFileError,
    PolicyStore,
    RateLimitedError,
    Reason,
    SlidingWindowLimiter,
    decide,
    load_policy,
    parse_policy,
    raise_for_decision,
)
from redactor.errors import PermissionDeniedError, PolicyError

DEFAULT_POLICY = Path(__file__).resolve().parents[3] / "policies" / "default.yaml"
T0 = 1_700_000_000.0
GOOD_PURPOSE = "customer disputes a charge on the March statement"


@dataclass(frozen=True, slots=True)
class Who:
    subject: str
    tenant: str
    roles: tuple[str, ...]


@pytest.fixture
def policy() -> Policy:
    return load_policy(DEFAULT_POLICY)


@pytest.fixture
def limiter() -> SlidingWindowLimiter:
    return SlidingWindowLimiter()


def ask(
    policy: Policy,
    limiter: SlidingWindowLimiter,
    who: Who,
    entity: str = "CREDIT_CARD",
    *,
    token_tenant: str | None = None,
    purpose: str | None = GOOD_PURPOSE,
    ticket: str | None = None,
    now: float = T0,
    requested: Level | None = None,
) -> Decision:
    return decide(
        policy,
        limiter,
        who,
        who.tenant if token_tenant is None else token_tenant,
        entity,
        purpose,
        ticket,
        now,
        requested=requested,
    )


def policy_text(**replacements: str) -> str:
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# --- loading -------------------------------------------------------------------------------------


def test_shipped_default_policy_loads(policy: Policy) -> None:
    assert policy.card_show_first_six is False
    assert policy.full_rate_limit is not None
    assert policy.full_rate_limit.max_reveals == 10
    assert "FRAUD_INVESTIGATION" in policy.purpose.codes
    assert set(policy.tenant_roles) == {"acme"}


@pytest.mark.parametrize(
    ("old", "new", "needle", "reason_part"),
    [
        (
            "US_SSN: full",
            "US_SSN: fulll",
            "US_SSN: fulll",
            "must be one of: none, masked, use, full",
        ),
        (
            "    billing_tool:\n      CREDIT_CARD: use",
            "    billing_tool:\n      IBAN: use",
            "IBAN",
            "unknown key 'IBAN'",
        ),
        (
            "  card_show_first_six: false",
            "  card_show_first_six: nope",
            "card_show_first_six: nope",
            "must be of type boolean",
        ),
        ("    max_reveals: 10", "    max_reveals: 0", "max_reveals: 0", "must be at least 1"),
        ("    billing_tool:", "    billing tool:", "billing tool:", "is not allowed"),
        (
            "    billing_tool:",
            "    support_agent:",
            "support_agent:\n      CREDIT_CARD: use",
            "duplicate key 'support_agent'",
        ),
        ("    billing_tool:", "    yes:", "yes:", "keys must be strings"),
        # PyYAML marks where parsing failed: the line after the unclosed bracket.
        ("  rate_limit:", "  rate_limit: [oops", "max_reveals: 10", "not valid YAML"),
        ('"[A-Z][A-Z0-9]{1,9}-[0-9]{1,9}"', '"[A-Z"', '"[A-Z"', "not a valid regular expression"),
        ("    min_length: 20", "    min_length: 501", "min_length: 501", "must be at most 500"),
    ],
)
def test_schema_error_names_file_line_and_reason(
    tmp_path: Path, old: str, new: str, needle: str, reason_part: str
) -> None:
    text = policy_text(**{old: new})
    path = tmp_path / "tenant-policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as excinfo:
        load_policy(path)
    error = excinfo.value
    assert isinstance(error, PolicyFileError)
    assert error.source == str(path)
    assert error.line == line_of(text, needle)
    assert reason_part in error.reason
    assert str(path) in str(error)
    assert f"line {error.line}" in str(error)


def test_purpose_section_without_rule_is_refused() -> None:
    text = policy_text(
        **{
            "    min_length: 20\n": "",
            "    codes:\n      - CHARGEBACK_DISPUTE\n      - FRAUD_INVESTIGATION\n"
            "      - CUSTOMER_REQUEST_VERIFIED\n": "",
        }
    )
    with pytest.raises(PolicyFileError) as excinfo:
        parse_policy(text, "p.yaml")
    assert excinfo.value.line == line_of(text, "max_length: 500")
    assert "min_length" in excinfo.value.reason


def test_missing_required_section_is_refused() -> None:
    with pytest.raises(PolicyFileError) as excinfo:
        parse_policy("version: 1\ndefault:\n  roles: {}\n", "p.yaml")
    assert "full_reveal" in excinfo.value.reason
    assert excinfo.value.line == 1


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_policy_is_refused(text: str) -> None:
    with pytest.raises(PolicyFileError):
        parse_policy(text, "p.yaml")


def test_unreadable_policy_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(PolicyFileError) as excinfo:
        load_policy(missing)
    assert excinfo.value.source == str(missing)
    assert excinfo.value.line is None


# --- the store -----------------------------------------------------------------------------------


def test_failed_reload_keeps_last_good_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(), encoding="utf-8")
    store = PolicyStore(path)
    before = store.policy
    bad = policy_text(**{"US_SSN: full": "US_SSN: everything"})
    path.write_text(bad, encoding="utf-8")
    with capture_logs() as logs:
        error = store.reload()
    assert isinstance(error, PolicyFileError)
    assert error.line == line_of(bad, "US_SSN: everything")
    assert store.policy is before
    assert [e["event"] for e in logs] == ["policy_reload_failed"]
    assert logs[0]["line"] == error.line

    path.write_text(policy_text(**{"card_show_first_six: false": "card_show_first_six: true"}))
    with capture_logs() as logs:
        assert store.reload() is None
    assert store.policy.card_show_first_six is True
    assert [e["event"] for e in logs] == ["policy_reloaded"]


def test_store_refuses_bad_policy_at_start(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 2\n", encoding="utf-8")
    with pytest.raises(PolicyFileError):
        PolicyStore(path)


def test_store_decides_with_current_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(), encoding="utf-8")
    store = PolicyStore(path)
    agent = Who("agent-1", "globex", ("billing_specialist",))
    assert store.decide(agent, "globex", "CREDIT_CARD", None, None, T0).granted_level is Level.USE
    path.write_text(
        policy_text(
            **{
                "      CREDIT_CARD: use\n      US_SSN: masked": "      CREDIT_CARD: masked\n      US_SSN: masked"
            }
        )
    )
    assert store.reload() is None
    assert (
        store.decide(agent, "globex", "CREDIT_CARD", None, None, T0).granted_level is Level.MASKED
    )


# --- decisions -----------------------------------------------------------------------------------


def test_token_of_another_tenant_never_resolves(
    policy: Policy, limiter: SlidingWindowLimiter
) -> None:
    investigator = Who("inv-1", "acme", ("fraud_investigator", "support_agent"))
    decision = ask(policy, limiter, investigator, token_tenant="globex")
    assert decision.reason_code is Reason.WRONG_TENANT
    assert decision.granted_level is Level.NONE
    assert not decision.granted


def test_highest_role_wins(policy: Policy, limiter: SlidingWindowLimiter) -> None:
    who = Who("a-1", "globex", ("support_agent", "billing_specialist"))
    card = ask(policy, limiter, who, "CREDIT_CARD")
    ssn = ask(policy, limiter, who, "US_SSN")
    assert (card.granted_level, card.reason_code) == (Level.USE, Reason.GRANTED)
    assert (ssn.granted_level, ssn.reason_code) == (Level.MASKED, Reason.GRANTED)


def test_unknown_roles_and_entities_get_nothing(
    policy: Policy, limiter: SlidingWindowLimiter
) -> None:
    assert ask(policy, limiter, Who("a", "globex", ("admin",))).reason_code is Reason.NO_PERMISSION
    assert ask(policy, limiter, Who("a", "globex", ())).reason_code is Reason.NO_PERMISSION
    assert (
        ask(policy, limiter, Who("a", "globex", ("billing_tool",)), "US_SSN").reason_code
        is Reason.NO_PERMISSION
    )
    assert (
        ask(policy, limiter, Who("a", "globex", ("fraud_investigator",)), "IBAN").reason_code
        is Reason.NO_PERMISSION
    )


def test_tenant_table_replaces_default(policy: Policy, limiter: SlidingWindowLimiter) -> None:
    # acme lists no billing_specialist and caps fraud_investigator at masked for SSNs.
    assert (
        ask(policy, limiter, Who("b", "acme", ("billing_specialist",))).reason_code
        is Reason.NO_PERMISSION
    )
    ssn = ask(policy, limiter, Who("f", "acme", ("fraud_investigator",)), "US_SSN")
    assert ssn.granted_level is Level.MASKED
    ssn_elsewhere = ask(policy, limiter, Who("f", "globex", ("fraud_investigator",)), "US_SSN")
    assert ssn_elsewhere.granted_level is Level.FULL


def test_lower_level_may_be_requested_without_purpose(
    policy: Policy, limiter: SlidingWindowLimiter
) -> None:
    investigator = Who("inv", "globex", ("fraud_investigator",))
    decision = ask(policy, limiter, investigator, purpose=None, requested=Level.MASKED)
    assert (decision.granted_level, decision.reason_code) == (Level.MASKED, Reason.GRANTED)
    assert decision.entitled_level is Level.FULL


def test_higher_level_than_entitled_is_refused(
    policy: Policy, limiter: SlidingWindowLimiter
) -> None:
    agent = Who("a", "globex", ("support_agent",))
    decision = ask(policy, limiter, agent, requested=Level.FULL)
    assert (decision.granted_level, decision.reason_code) == (Level.NONE, Reason.NO_PERMISSION)


@pytest.mark.parametrize(
    ("purpose", "reason"),
    [
        (None, Reason.PURPOSE_REQUIRED),
        ("   ", Reason.PURPOSE_REQUIRED),
        ("because", Reason.PURPOSE_TOO_SHORT),
        ("a       b       c       d", Reason.PURPOSE_TOO_SHORT),  # padding does not count
        ("x" * 501, Reason.PURPOSE_TOO_LONG),
        ("FRAUD_INVESTIGATION", Reason.GRANTED),  # a code is accepted whatever its length
        (" CHARGEBACK_DISPUTE ", Reason.GRANTED),
        (GOOD_PURPOSE, Reason.GRANTED),
    ],
)
def test_full_reveal_needs_a_stated_purpose(
    policy: Policy, limiter: SlidingWindowLimiter, purpose: str | None, reason: Reason
) -> None:
    decision = ask(policy, limiter, Who("inv", "globex", ("fraud_investigator",)), purpose=purpose)
    assert decision.reason_code is reason
    assert decision.granted_level is (Level.FULL if reason is Reason.GRANTED else Level.NONE)


def test_codes_only_policy_refuses_free_text(limiter: SlidingWindowLimiter) -> None:
    policy = parse_policy(policy_text(**{"    min_length: 20\n": ""}), "p.yaml")
    investigator = Who("inv", "globex", ("fraud_investigator",))
    assert (
        ask(policy, limiter, investigator, purpose=GOOD_PURPOSE).reason_code
        is Reason.PURPOSE_NOT_ALLOWED
    )
    assert (
        ask(policy, limiter, investigator, purpose="FRAUD_INVESTIGATION").reason_code
        is Reason.GRANTED
    )


@pytest.mark.parametrize(
    ("required", "ticket", "reason"),
    [
        ("false", None, Reason.GRANTED),
        ("false", "SUP-1234", Reason.GRANTED),
        ("false", "sup-1234", Reason.TICKET_INVALID),
        ("false", "SUP-1234; DROP", Reason.TICKET_INVALID),
        ("false", "SUP-" + "1" * 200, Reason.TICKET_INVALID),
        ("true", None, Reason.TICKET_REQUIRED),
        ("true", "SUP-1234", Reason.GRANTED),
    ],
)
def test_ticket_reference_rules(
    limiter: SlidingWindowLimiter, required: str, ticket: str | None, reason: Reason
) -> None:
    policy = parse_policy(policy_text(**{"required: false": f"required: {required}"}), "p.yaml")
    decision = ask(policy, limiter, Who("inv", "globex", ("fraud_investigator",)), ticket=ticket)
    assert decision.reason_code is reason


def test_full_reveals_are_rate_limited_per_subject_in_a_sliding_window(
    policy: Policy, limiter: SlidingWindowLimiter
) -> None:
    inv = Who("inv", "globex", ("fraud_investigator",))
    for i in range(10):
        assert ask(policy, limiter, inv, now=T0 + i * 60).reason_code is Reason.GRANTED
    eleventh = ask(policy, limiter, inv, now=T0 + 600)
    assert (eleventh.reason_code, eleventh.granted_level) == (Reason.RATE_LIMITED, Level.NONE)
    # Another subject, and the same subject in another tenant, have their own budgets.
    assert ask(
        policy, limiter, Who("inv-2", "globex", ("fraud_investigator",)), now=T0 + 600
    ).granted
    assert ask(
        policy, limiter, Who("inv", "initech", ("fraud_investigator",)), now=T0 + 600
    ).granted
    # Masked and use reveals do not count and are not limited.
    assert ask(policy, limiter, inv, requested=Level.MASKED, now=T0 + 600).granted
    # The window slides: the first reveal (T0) leaves it at T0 + 3600, the second at T0 + 3660.
    assert ask(policy, limiter, inv, now=T0 + 3599).reason_code is Reason.RATE_LIMITED
    assert ask(policy, limiter, inv, now=T0 + 3600).granted
    assert ask(policy, limiter, inv, now=T0 + 3601).reason_code is Reason.RATE_LIMITED
    assert ask(policy, limiter, inv, now=T0 + 3660).granted


def test_denied_full_reveals_do_not_use_up_the_budget(
    policy: Policy, limiter: SlidingWindowLimiter
) -> None:
    inv = Who("inv", "globex", ("fraud_investigator",))
    for _ in range(20):
        assert ask(policy, limiter, inv, purpose="short").reason_code is Reason.PURPOSE_TOO_SHORT
    assert ask(policy, limiter, inv).granted


def test_limiter_counts_and_prunes() -> None:
    limiter = SlidingWindowLimiter()
    assert limiter.try_acquire("k", 0.0, limit=2, window_s=10)
    assert limiter.try_acquire("k", 1.0, limit=2, window_s=10)
    assert not limiter.try_acquire("k", 9.0, limit=2, window_s=10)
    assert limiter.count("k", 9.0, window_s=10) == 2
    assert limiter.try_acquire("k", 10.0, limit=2, window_s=10)
    limiter.prune(100.0, window_s=10)
    assert limiter.count("k", 100.0, window_s=10) == 0
    # A smaller limit after a reload applies to the history already recorded.
    for t in (200.0, 201.0, 202.0):
        assert limiter.try_acquire("k", t, limit=5, window_s=10)
    assert not limiter.try_acquire("k", 203.0, limit=3, window_s=10)


def test_decision_is_plain_data_for_audit(policy: Policy, limiter: SlidingWindowLimiter) -> None:
    decision = ask(policy, limiter, Who("inv", "globex", ("fraud_investigator",)))
    record = json.loads(json.dumps(dataclasses.asdict(decision)))
    assert record == {
        "granted_level": "full",
        "reason_code": "granted",
        "entitled_level": "full",
        "subject": "inv",
        "tenant": "globex",
        "token_tenant": "globex",
        "entity_type": "CREDIT_CARD",
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.granted_level = Level.NONE  # type: ignore[misc]


@pytest.mark.parametrize("reason", [r for r in Reason if r is not Reason.GRANTED])
def test_every_denial_maps_to_a_typed_error(reason: Reason) -> None:
    decision = Decision(Level.NONE, reason, Level.NONE, "s", "t", "t", "CREDIT_CARD")
    with pytest.raises(PermissionDeniedError) as excinfo:
        raise_for_decision(decision)
    assert excinfo.value.code == reason.value
    assert excinfo.value.status == (429 if reason is Reason.RATE_LIMITED else 403)


def test_rate_limited_is_429() -> None:
    assert RateLimitedError.status == 429
    raise_for_decision(Decision(Level.FULL, Reason.GRANTED, Level.FULL, "s", "t", "t", "US_SSN"))
