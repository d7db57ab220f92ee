"""The agent API's calls and the vault's operations in /metrics: names and codes, never values."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.agent.conftest import CARD, CARD_DIGITS, Stack


def _samples(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = stack.resources.metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _calls(samples, endpoint: str, outcome: str, level: str) -> float:
    labels = (("endpoint", endpoint), ("level", level), ("outcome", outcome))
    return samples.get(("redactor_agent_calls_total", labels), 0.0)


async def test_agent_calls_are_counted_by_endpoint_outcome_and_level(stack: Stack) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    for _ in range(2):
        resp = await stack.agent.post("/v1/resolve", json={"tokens": [card]}, headers=stack.auth())
        assert resp.status == 200
    resp = await stack.agent.post(
        "/v1/resolve", json={"tokens": [card], "level": "masked"}, headers=stack.auth()
    )
    assert resp.status == 200
    resp = await stack.agent.post("/v1/resolve", json={"tokens": [card]})
    assert resp.status == 401
    resp = await stack.agent.post(
        "/v1/reveal-text", json={"text": f"see {card}", "level": "masked"}, headers=stack.auth()
    )
    assert resp.status == 200

    samples = _samples(stack)
    assert _calls(samples, "/v1/resolve", "ok", "default") == 2
    assert _calls(samples, "/v1/resolve", "ok", "masked") == 1
    assert _calls(samples, "/v1/resolve", "unauthenticated", "default") == 1
    assert _calls(samples, "/v1/reveal-text", "ok", "masked") == 1
    # One tokenize for the webhook, one resolve per authorised call.
    ops = {
        labels: v for (name, labels), v in samples.items()
        if name == "redactor_vault_operations_total"
    }  # fmt: skip
    assert ops == {
        (("kind", "resolve"), ("outcome", "ok")): 4.0,
        (("kind", "tokenize"), ("outcome", "ok")): 1.0,
    }
    assert samples[("redactor_audit_write_failures_total", ())] == 0
    assert samples[("redactor_audit_records_total", ())] > 0
    text = stack.resources.metrics.exposition().decode()
    assert CARD_DIGITS not in text
    assert card not in text
