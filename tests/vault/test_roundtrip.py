"""Property: any valid PAN or SSN, in any spelling, round-trips through tokenize and resolve."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.service import Resolved, Vault
from vault.tokens import EntityType


def _luhn_complete(body: str) -> str:
    total = 0
    for i, char in enumerate(reversed(body)):
        digit = int(char)
        if i % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return body + str((10 - total % 10) % 10)


pans = st.builds(_luhn_complete, st.text(alphabet="0123456789", min_size=11, max_size=18)).map(
    lambda d: (EntityType.CARD, d)
)
ssns = st.tuples(
    st.integers(1, 899).filter(lambda a: a != 666),
    st.integers(1, 99),
    st.integers(1, 9999),
).map(lambda t: (EntityType.SSN, f"{t[0]:03d}{t[1]:02d}{t[2]:04d}"))
separators = st.sampled_from(["", " ", "-", "\u00a0"])


def _spell(digits: str, separator: str, wide: bool) -> str:
    if wide:
        digits = "".join(chr(0xFF10 + int(d)) for d in digits)
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=st.lists(st.tuples(pans | ssns, separators, st.booleans()), min_size=1, max_size=8))
async def test_tokenize_resolve_round_trip(vault: Vault, values: list) -> None:  # type: ignore[type-arg]
    items = [(entity.value, _spell(d, sep, wide)) for (entity, d), sep, wide in values]
    tokens = await vault.tokenize_many("acme", items)
    results = await vault.resolve_many("acme", [t.text for t in tokens])
    for token, ((entity, digits), _sep, _wide) in zip(tokens, values, strict=True):
        assert results[token.text] == Resolved(token.text, entity, digits)
        assert digits not in token.text
        if entity is EntityType.CARD:
            assert token.text.endswith("_" + digits[-4:])
