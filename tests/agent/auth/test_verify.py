"""JWT verification against a JWKS file: happy paths, and each attack refused with its reason
code without any token or claim text reaching the error or the logs."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from redactor.agent.auth import VERIFIED_TTL_S, AuthSettings, Principal, Secret, TokenVerifier
from redactor.agent.policy import Reason, SlidingWindowLimiter, decide, load_policy
from redactor.errors import AuthError, ConfigError

from .conftest import (
    AUDIENCE,
    ISSUER,
    SUBJECT,
    T0,
    TENANT,
    Clock,
    assert_nothing_leaks,
    b64url,
    claims,
    forge,
    hs256_with,
    jwks_of,
    public_jwk,
    sign,
)

HS_SECRET = "0123456789abcdef0123456789abcdef-hs256-test-secret"
DEFAULT_POLICY = Path(__file__).resolve().parents[3] / "policies" / "default.yaml"


async def refused(verifier: TokenVerifier, header: str | None, code: str) -> AuthError:
    """Verify `header`, expect AuthError `code`, and check nothing of the token leaked."""
    with capture_logs() as logs, pytest.raises(AuthError) as excinfo:
        await verifier.verify(header)
    error = excinfo.value
    assert error.code == code
    assert error.status == 401
    if header and header.split():
        token = header.split()[-1]
        assert_nothing_leaks(
            token,
            [
                str(error),
                repr(error),
                repr(error.args),
                str(error.detail),
                json.dumps(logs, default=str),
            ],
        )
        # Third-party exception text (PyJWT quotes input) is dropped, not chained.
        assert error.__cause__ is None
        assert error.__suppress_context__ or error.__context__ is None
    return error


@pytest.fixture
def verifier(make_settings: Callable[..., AuthSettings], clock: Clock) -> TokenVerifier:
    return TokenVerifier(make_settings(), now=clock)


# --- happy paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "key_fixture", "kid"),
    [
        ("RS256", "rsa_key", "k1"),
        ("PS256", "rsa_key", "k1"),
        ("ES256", "ec_key", "ec1"),
        ("EdDSA", "ed_key", "ed1"),
    ],
)
async def test_valid_token_yields_principal(
    verifier: TokenVerifier, request: pytest.FixtureRequest, alg: str, key_fixture: str, kid: str
) -> None:
    key = request.getfixturevalue(key_fixture)
    payload = claims(roles=["support_agent", "billing_specialist"], jti="jti-1")
    principal = await verifier.verify(f"Bearer {sign(key, payload, alg=alg, kid=kid)}")
    assert principal == Principal(
        subject=SUBJECT,
        tenant=TENANT,
        roles=("support_agent", "billing_specialist"),
        token_id="jti-1",
    )


async def test_roles_may_be_a_space_separated_string(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = sign(rsa_key, claims(roles="support_agent  fraud_investigator support_agent"))
    principal = await verifier.verify(f"bearer {token}")
    assert principal.roles == ("support_agent", "fraud_investigator")


async def test_claim_names_are_configurable(
    make_settings: Callable[..., AuthSettings], clock: Clock, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier(
        make_settings(subject_claim="email", tenant_claim="org_id", roles_claim="scope"), now=clock
    )
    payload = claims(email="a@example.test", org_id="org-9", scope="support_agent")
    principal = await verifier.verify(f"Bearer {sign(rsa_key, payload)}")
    assert (principal.subject, principal.tenant, principal.roles) == (
        "a@example.test",
        "org-9",
        ("support_agent",),
    )


async def test_token_without_jti_has_no_token_id(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    principal = await verifier.verify(f"Bearer {sign(rsa_key, claims(), drop_claims=['jti'])}")
    assert principal.token_id is None


async def test_audience_list_containing_ours_is_accepted(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = sign(rsa_key, claims(aud=["other-api", AUDIENCE]))
    assert (await verifier.verify(f"Bearer {token}")).subject == SUBJECT


async def test_hs256_with_explicit_secret(tmp_path: Path, clock: Clock) -> None:
    settings = AuthSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        hs256_secret=Secret(HS_SECRET),
        allowed_algorithms=("HS256",),
    )
    verifier = TokenVerifier(settings, now=clock)
    token = sign(HS_SECRET.encode(), claims(), alg="HS256", kid=None)
    assert (await verifier.verify(f"Bearer {token}")).subject == SUBJECT
    wrong = sign(b"another-secret-that-is-32-bytes-long!!", claims(), alg="HS256", kid=None)
    await refused(verifier, f"Bearer {wrong}", "bad_signature")


# --- time ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset_s", "code"),
    [(-31, "token_expired"), (-300, "token_expired"), (-29, None)],
)
async def test_expiry_with_leeway(
    verifier: TokenVerifier,
    rsa_key: rsa.RSAPrivateKey,
    clock: Clock,
    offset_s: int,
    code: str | None,
) -> None:
    token = sign(rsa_key, claims(now=T0 - 600, exp=int(T0) + offset_s))
    if code is None:
        assert (await verifier.verify(f"Bearer {token}")).subject == SUBJECT
    else:
        await refused(verifier, f"Bearer {token}", code)


async def test_token_expires_as_the_clock_moves(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    token = sign(rsa_key, claims())  # exp = T0 + 300
    await verifier.verify(f"Bearer {token}")
    clock.now = T0 + 330
    await refused(verifier, f"Bearer {token}", "token_expired")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"nbf": int(T0) + 31}, "token_not_yet_valid"),
        ({"iat": int(T0) + 3600}, "token_not_yet_valid"),
        ({"nbf": int(T0) + 29}, None),
    ],
)
async def test_not_yet_valid_with_leeway(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, overrides: dict[str, int], code: str | None
) -> None:
    token = sign(rsa_key, claims(**overrides))
    if code is None:
        assert (await verifier.verify(f"Bearer {token}")).subject == SUBJECT
    else:
        await refused(verifier, f"Bearer {token}", code)


async def test_leeway_is_configurable(
    make_settings: Callable[..., AuthSettings], clock: Clock, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier(make_settings(leeway_s=0), now=clock)
    await refused(verifier, f"Bearer {sign(rsa_key, claims(exp=int(T0)))}", "token_expired")


async def test_nbf_can_be_required(
    make_settings: Callable[..., AuthSettings], clock: Clock, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier(make_settings(require_nbf=True), now=clock)
    await refused(
        verifier, f"Bearer {sign(rsa_key, claims(), drop_claims=['nbf'])}", "claim_missing"
    )


# --- issuer, audience, claims --------------------------------------------------------------------


async def test_wrong_issuer(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, claims(iss="https://evil.example.test/"))
    await refused(verifier, f"Bearer {token}", "wrong_issuer")


@pytest.mark.parametrize("aud", ["another-api", ["a", "b"], AUDIENCE.upper(), AUDIENCE + "x"])
async def test_wrong_audience(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, aud: Any
) -> None:
    await refused(verifier, f"Bearer {sign(rsa_key, claims(aud=aud))}", "wrong_audience")


@pytest.mark.parametrize("claim", ["sub", "tenant", "roles", "exp", "iss", "aud"])
async def test_missing_claims(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, claim: str
) -> None:
    token = sign(rsa_key, claims(), drop_claims=[claim])
    await refused(verifier, f"Bearer {token}", "claim_missing")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"sub": ""}, "claim_missing"),
        ({"sub": 42}, "claim_invalid"),
        ({"tenant": ["a", "b"]}, "claim_invalid"),
        ({"roles": {"admin": True}}, "claim_invalid"),
        ({"roles": ["support_agent", 7]}, "claim_invalid"),
        ({"jti": 12}, "claim_invalid"),
        ({"exp": "tomorrow"}, "token_malformed"),
        ({"exp": True}, "token_malformed"),
    ],
)
async def test_claims_of_the_wrong_type(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, overrides: dict[str, Any], code: str
) -> None:
    await refused(verifier, f"Bearer {sign(rsa_key, claims(**overrides))}", code)


# --- header shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "token_missing"),
        ("", "token_missing"),
        ("   ", "token_missing"),
        ("Bearer", "token_missing"),
        ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", "token_missing"),
        ("Bearer not-a-jwt", "token_malformed"),
        ("Bearer a.b", "token_malformed"),
        ("Bearer aaaa.bbbb.cccc dddd", "token_malformed"),
        ("Bearer aaaa.bbbb.cccc.dddd.eeee", "token_malformed"),  # JWE compact form
        ("Bearer eyJhbGciOiJSUzI1NiJ9.!!!!.cccc", "token_malformed"),
        ("Bearer Zm9vYmFyYmF6cXV4.Zm9vYmFyYmF6cXV4.Zm9vYmFyYmF6cXV4", "token_malformed"),
        ("Bearer " + "a" * 9000 + ".b.c", "token_malformed"),
    ],
)
async def test_missing_or_malformed_header(
    verifier: TokenVerifier, header: str | None, code: str
) -> None:
    await refused(verifier, header, code)


# --- attacks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_is_refused(verifier: TokenVerifier, alg: str) -> None:
    token = forge({"alg": alg, "typ": "JWT", "kid": "k1"}, claims(), lambda _data: b"")
    await refused(verifier, f"Bearer {token}", "algorithm_not_allowed")


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    "secret_form",
    [
        "pem",
        "der",
    ],
)
async def test_hs256_signed_with_the_rsa_public_key_is_refused(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, secret_form: str
) -> None:
    """The classic key confusion: sign HS256 with the (public) RSA key as the HMAC secret."""
    public = rsa_key.public_key()
    secret = (
        _public_pem(rsa_key)
        if secret_form == "pem"
        else public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    token = forge({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims(), hs256_with(secret))
    await refused(verifier, f"Bearer {token}", "algorithm_not_allowed")


async def test_key_confusion_fails_even_when_hs256_is_also_allowed(
    make_settings: Callable[..., AuthSettings], clock: Clock, rsa_key: rsa.RSAPrivateKey
) -> None:
    settings = make_settings(allowed_algorithms=("RS256", "HS256"), hs256_secret=Secret(HS_SECRET))
    verifier = TokenVerifier(settings, now=clock)
    token = forge({"alg": "HS256", "kid": "k1"}, claims(), hs256_with(_public_pem(rsa_key)))
    # HS256 only ever verifies with the configured secret, never with a JWKS key.
    await refused(verifier, f"Bearer {token}", "bad_signature")


@pytest.mark.parametrize(
    ("alg", "kid", "key_fixture"),
    [
        ("RS256", "ec1", "rsa_key"),  # RSA algorithm against the EC key
        ("ES256", "k1", "ec_key"),  # EC algorithm against the RSA key
        ("ES384", "ec1", "ec_key"),  # P-256 key is only for ES256
    ],
)
async def test_key_type_and_algorithm_family_must_agree(
    make_settings: Callable[..., AuthSettings],
    clock: Clock,
    request: pytest.FixtureRequest,
    alg: str,
    kid: str,
    key_fixture: str,
) -> None:
    verifier = TokenVerifier(
        make_settings(allowed_algorithms=("RS256", "ES256", "ES384")), now=clock
    )
    key = request.getfixturevalue(key_fixture)
    if alg == "ES384":
        key = ec.generate_private_key(ec.SECP384R1())
    token = sign(key, claims(), alg=alg, kid=kid)
    await refused(verifier, f"Bearer {token}", "algorithm_not_allowed")


async def test_algorithm_off_the_allow_list_is_refused(
    make_settings: Callable[..., AuthSettings], clock: Clock, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier(make_settings(allowed_algorithms=("ES256",)), now=clock)
    await refused(verifier, f"Bearer {sign(rsa_key, claims())}", "algorithm_not_allowed")


async def test_jwk_pinned_alg_is_enforced(
    tmp_path: Path, clock: Clock, rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "pinned.json"
    path.write_text(json.dumps(jwks_of(public_jwk(rsa_key, "k1", alg="PS256"))))
    settings = AuthSettings(
        issuer=ISSUER, audience=AUDIENCE, jwks_path=path, allowed_algorithms=("RS256", "PS256")
    )
    verifier = TokenVerifier(settings, now=clock)
    await refused(
        verifier, f"Bearer {sign(rsa_key, claims(), alg='RS256')}", "algorithm_not_allowed"
    )
    assert await verifier.verify(f"Bearer {sign(rsa_key, claims(), alg='PS256')}")


async def test_tampered_payload_is_refused(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    header, _payload, signature = sign(rsa_key, claims()).split(".")
    escalated = b64url(json.dumps(claims(roles=["fraud_investigator"])).encode())
    await refused(verifier, f"Bearer {header}.{escalated}.{signature}", "bad_signature")


async def test_tampered_signature_is_refused(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = sign(rsa_key, claims())
    flipped = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    await refused(verifier, f"Bearer {flipped}", "bad_signature")


async def test_token_signed_by_another_key_under_our_kid(
    verifier: TokenVerifier, attacker_rsa_key: rsa.RSAPrivateKey
) -> None:
    await refused(verifier, f"Bearer {sign(attacker_rsa_key, claims(), kid='k1')}", "bad_signature")


async def test_unknown_kid_is_refused(
    verifier: TokenVerifier, attacker_rsa_key: rsa.RSAPrivateKey
) -> None:
    await refused(
        verifier, f"Bearer {sign(attacker_rsa_key, claims(), kid='k-evil')}", "unknown_key"
    )


async def test_missing_kid_with_several_keys_is_unknown(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    await refused(verifier, f"Bearer {sign(rsa_key, claims(), kid=None)}", "unknown_key")


async def test_key_embedded_in_the_token_header_is_ignored(
    verifier: TokenVerifier, attacker_rsa_key: rsa.RSAPrivateKey
) -> None:
    """RFC 7515 `jwk`/`jku`/`x5u` headers let a token name its own key: we never use them."""
    evil = public_jwk(attacker_rsa_key, "k1")
    headers = {"jwk": evil, "jku": "https://evil.example.test/jwks.json"}
    token = sign(attacker_rsa_key, claims(), kid="k1", headers=headers)
    await refused(verifier, f"Bearer {token}", "bad_signature")


async def test_revoked_jti_is_refused(
    make_settings: Callable[..., AuthSettings], clock: Clock, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier(make_settings(revoked_jtis=frozenset({"stolen-1"})), now=clock)
    await refused(verifier, f"Bearer {sign(rsa_key, claims(jti='stolen-1'))}", "token_revoked")
    assert await verifier.verify(f"Bearer {sign(rsa_key, claims(jti='fine-2'))}")


async def test_replayed_token_of_a_revoked_key_is_refused(
    make_settings: Callable[..., AuthSettings],
    clock: Clock,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    token = sign(rsa_key, claims())
    assert await TokenVerifier(make_settings(), now=clock).verify(f"Bearer {token}")
    # The key k1 leaked and is revoked; it is still in the JWKS file, and the token is valid.
    revoked = TokenVerifier(make_settings(revoked_kids=frozenset({"k1"})), now=clock)
    await refused(revoked, f"Bearer {token}", "token_revoked")
    assert await revoked.verify(f"Bearer {sign(ec_key, claims(), alg='ES256', kid='ec1')}")


async def test_token_of_another_tenant_never_resolves(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    """A verified principal of one tenant asks for another tenant's vault token."""
    token = sign(rsa_key, claims(tenant="acme", roles=["fraud_investigator", "support_agent"]))
    principal = await verifier.verify(f"Bearer {token}")
    policy = load_policy(DEFAULT_POLICY)
    decision = decide(
        policy,
        SlidingWindowLimiter(),
        principal,
        "globex",
        "CREDIT_CARD",
        "FRAUD_INVESTIGATION",
        None,
        T0,
    )
    assert decision.reason_code is Reason.WRONG_TENANT
    assert not decision.granted
    same_tenant = decide(
        policy,
        SlidingWindowLimiter(),
        principal,
        "acme",
        "CREDIT_CARD",
        "FRAUD_INVESTIGATION",
        None,
        T0,
    )
    assert same_tenant.granted


# --- settings ------------------------------------------------------------------------------------


def test_secret_is_masked_in_reprs() -> None:
    settings = AuthSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        hs256_secret=Secret(HS_SECRET),
        allowed_algorithms=("HS256",),
    )
    for text in (
        repr(settings),
        str(settings),
        repr(settings.hs256_secret),
        f"{settings.hs256_secret}",
    ):
        assert HS_SECRET not in text
        assert HS_SECRET[:12] not in text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"allowed_algorithms": ("RS256", "none")}, "allowed_algorithms"),
        ({"allowed_algorithms": ()}, "allowed_algorithms"),
        ({"allowed_algorithms": ("RS256", "HS256")}, "hs256_secret"),  # HS256 without a secret
        ({"hs256_secret": Secret(HS_SECRET)}, "hs256_secret"),  # a secret without HS256
        (
            {"allowed_algorithms": ("RS256", "HS256"), "hs256_secret": Secret("short")},
            "hs256_secret",
        ),
        ({"jwks_url": "https://idp.example.test/jwks"}, "jwks_path"),  # both sources
        ({"jwks_path": None}, "allowed_algorithms"),  # RS256 without any JWKS
        ({"jwks_path": None, "jwks_url": "http://idp.example.test/jwks"}, "jwks_url"),
        ({"jwks_path": None, "jwks_url": "ftp://127.0.0.1/jwks"}, "jwks_url"),
        ({"leeway_s": -1}, "leeway_s"),
        ({"leeway_s": 3600}, "leeway_s"),
        ({"jwks_timeout_s": 0}, "jwks_timeout_s"),
        ({"jwks_cache_ttl_s": float("nan")}, "jwks_cache_ttl_s"),
        ({"issuer": ""}, "issuer"),
        ({"roles_claim": ""}, "roles_claim"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    make_settings: Callable[..., AuthSettings], overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        make_settings(**overrides)
    assert f"auth.{field}" in str(excinfo.value)
    assert HS_SECRET not in str(excinfo.value)


@pytest.mark.parametrize(
    "content",
    [
        None,  # missing file
        b"not json",
        b'{"keys": "nope"}',
        b'{"keys": []}',
        # Only an HMAC secret: symmetric keys never come from a key set.
        b'{"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": "h"}]}',
    ],
)
def test_bad_jwks_file_is_a_config_error(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_bytes(content)
    settings = AuthSettings(issuer=ISSUER, audience=AUDIENCE, jwks_path=path)
    with pytest.raises(ConfigError) as excinfo:
        TokenVerifier(settings)
    assert str(path) in str(excinfo.value)
    assert "c2VjcmV0" not in str(excinfo.value)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_jwks_skips_unusable_members(
    tmp_path: Path,
    clock: Clock,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> None:
    # A weak key on purpose: the set must refuse it.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    doc = jwks_of(
        public_jwk(weak, "weak"),  # below 2048 bits
        public_jwk(ec_key, "enc", use="enc"),  # an encryption key
        public_jwk(ed_key, "ops", key_ops=["encrypt"]),
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        "not an object",
        public_jwk(rsa_key, "k1"),
        public_jwk(ec_key, "k1"),  # duplicate kid: the first one stands
    )
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(doc))
    settings = AuthSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_path=path,
        allowed_algorithms=("RS256", "ES256", "EdDSA"),
    )
    with capture_logs() as logs:
        verifier = TokenVerifier(settings, now=clock)
    assert logs[-1]["event"] == "jwks_loaded"
    assert (logs[-1]["keys"], logs[-1]["skipped"]) == (1, 7)
    assert await verifier.verify(f"Bearer {sign(rsa_key, claims(), kid='k1')}")
    await refused(verifier, f"Bearer {sign(weak, claims(), kid='weak')}", "unknown_key")
    await refused(
        verifier, f"Bearer {sign(ec_key, claims(), alg='ES256', kid='enc')}", "unknown_key"
    )


async def test_single_key_set_accepts_token_without_kid(
    tmp_path: Path, clock: Clock, rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(jwks_of(public_jwk(rsa_key, None))))
    verifier = TokenVerifier(
        AuthSettings(issuer=ISSUER, audience=AUDIENCE, jwks_path=path), now=clock
    )
    assert await verifier.verify(f"Bearer {sign(rsa_key, claims(), kid=None)}")


def test_jwks_url_needs_a_session() -> None:
    settings = AuthSettings(
        issuer=ISSUER, audience=AUDIENCE, jwks_url="https://idp.example.test/jwks"
    )
    with pytest.raises(ConfigError):
        TokenVerifier(settings)


@pytest.mark.parametrize("value", [10**400, 1e308 * 10, -(10**400)])
async def test_absurd_times_are_malformed_not_a_crash(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, value: Any
) -> None:
    await refused(verifier, f"Bearer {sign(rsa_key, claims(exp=value))}", "token_malformed")


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutated_tokens_raise_only_auth_errors(
    make_settings: Callable[..., AuthSettings], rsa_key: rsa.RSAPrivateKey, data: st.DataObject
) -> None:
    """Any byte-level mutation of a valid token is refused with one of our AuthErrors."""
    verifier = TokenVerifier(make_settings(), now=Clock())
    token = sign(rsa_key, claims(jti="fixed"))
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.text(min_size=0, max_size=3))
    mutated = token[:position] + replacement + token[position + 1 :]
    try:
        asyncio.run(verifier.verify(f"Bearer {mutated}"))
    except AuthError:
        return
    # Accepted only when the mutation vanishes in decoding: the last base64url character of a
    # segment carries unused low bits, so some edits decode to the very same signed bytes.
    assert [_b64decode(part) for part in mutated.split(".")] == [
        _b64decode(part) for part in token.split(".")
    ]


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# --- the verified-token cache ---------------------------------------------------------------------


async def test_a_verified_token_is_not_checked_again_until_it_expires(
    verifier: TokenVerifier, rsa_key, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = sign(rsa_key, claims(exp=int(T0) + 30))
    first = await verifier.verify(f"Bearer {token}")
    decodes = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decodes.append(1))
    assert await verifier.verify(f"Bearer {token}") == first
    assert decodes == []
    # Past its exp the cached entry is gone and the token is checked (and refused) again.
    monkeypatch.undo()
    clock.now = T0 + 31 + 60
    expect_error = await _refused(verifier, token)
    assert expect_error.code == "token_expired"


async def _refused(verifier: TokenVerifier, token: str):
    with pytest.raises(AuthError) as info:
        await verifier.verify(f"Bearer {token}")
    return info.value


async def test_the_cache_never_outlives_its_ttl_even_for_long_lived_tokens(
    verifier: TokenVerifier, rsa_key, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = sign(rsa_key, claims(exp=int(T0) + 3600))
    await verifier.verify(f"Bearer {token}")
    calls = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or real_decode(*a, **k))
    clock.now = T0 + VERIFIED_TTL_S + 1
    await verifier.verify(f"Bearer {token}")
    assert calls == [1]
