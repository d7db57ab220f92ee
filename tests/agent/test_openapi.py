"""/openapi.json describes the agent API truly: schemathesis generates requests from it (a
bounded number per operation) against the real app and checks every answer against it."""

from __future__ import annotations

import asyncio
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.agent.conftest import CARD, Stack

MAX_EXAMPLES = 30


def _run_schemathesis(doc: dict[str, Any], base_url: str, headers: dict[str, str]) -> list[str]:
    """Every operation, positive and negative examples; the failures found, as text."""
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {
        "/v1/resolve", "/v1/reveal-text", "/out/{name}/{path}", "/openapi.json",
    }  # fmt: skip
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and operation.path == "/openapi.json":
                continue  # no parameter, no body: nothing to get wrong

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                case.call_and_validate(base_url=base_url, headers=headers)

            try:
                check()
            except Exception as exc:  # noqa: BLE001 - collected and shown together below
                failures.append(f"{operation.label} {mode.value}: {exc}")
    return failures


async def test_the_agent_api_keeps_to_its_openapi_document(stack: Stack) -> None:
    await stack.tokenize(f"card {CARD}")
    resp = await stack.agent.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    base_url = str(stack.agent.make_url("")).rstrip("/")
    headers = stack.auth(roles=["support_agent"])
    failures = await asyncio.to_thread(_run_schemathesis, doc, base_url, headers)
    assert failures == [], "\n\n".join(failures)
