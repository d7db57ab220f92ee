"""`vault reconcile`'s reading of the trail: tokens per tenant, and which a purge explains."""

from __future__ import annotations

from redactor.ops.reconcile import collect, purged_by

TOKEN_A = "tok_v1_ssn_" + "a" * 20
TOKEN_B = "tok_v1_ssn_" + "b" * 20
TOKEN_C = "tok_v1_ssn_" + "c" * 20


def _message(time: str, tenant: str, *tokens: str) -> dict[str, object]:
    return {"event": "message_redacted", "time": time, "tenant": tenant, "tokens": list(tokens)}


def test_tokens_are_collected_per_tenant_with_first_and_last_sighting() -> None:
    trail = collect(
        [
            _message("2026-01-01T00:00:00.000+00:00", "acme", TOKEN_A),
            _message("2026-03-01T00:00:00.000+00:00", "acme", TOKEN_A, TOKEN_B),
            _message("2026-03-02T00:00:00.000+00:00", "globex", TOKEN_A),
            {"event": "message_delivered", "time": "2026-03-03T00:00:00.000+00:00"},
            {"event": "token_revealed", "time": "2026-05-01T00:00:00.000+00:00",
             "tenant": "acme", "token": TOKEN_B, "reason": "granted"},
            {"event": "token_denied", "time": "2026-06-01T00:00:00.000+00:00",
             "tenant": "acme", "token": TOKEN_C, "reason": "not_found"},
        ]
    )  # fmt: skip
    assert set(trail.minted) == {("acme", TOKEN_A), ("acme", TOKEN_B), ("globex", TOKEN_A)}
    a = trail.minted[("acme", TOKEN_A)]
    assert (a.first.month, a.last.month, a.records) == (1, 3, 2)
    # A granted resolve is activity; a guess the vault did not know is not a minted token.
    assert trail.minted[("acme", TOKEN_B)].last.month == 5


def test_a_token_idle_before_a_finished_purge_is_told_apart_from_a_lost_one() -> None:
    trail = collect(
        [
            _message("2026-01-01T00:00:00.000+00:00", "acme", TOKEN_A),
            _message("2026-05-01T00:00:00.000+00:00", "acme", TOKEN_B),
            {"event": "vault_purge", "phase": "started", "older_than": "90d",
             "time": "2026-05-02T00:00:00.000+00:00"},
            {"event": "vault_purge", "phase": "finished", "older_than": "90d",
             "time": "2026-05-02T00:00:01.000+00:00"},
        ]
    )  # fmt: skip
    assert len(trail.purge_cutoffs) == 1
    # Idle since January: the May purge (cutoff early February) took it.
    assert purged_by(trail.minted[("acme", TOKEN_A)], trail.purge_cutoffs) is not None
    # Seen the day before the purge: not purged, so missing means lost.
    assert purged_by(trail.minted[("acme", TOKEN_B)], trail.purge_cutoffs) is None
