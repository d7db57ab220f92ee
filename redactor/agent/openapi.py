"""The agent API's OpenAPI 3.1 description, served at GET /openapi.json on the agent listener.

Built from the agent settings in force (token and body limits), and kept true by a
schemathesis run against the real app (tests/agent/test_openapi.py).
"""

from __future__ import annotations

from typing import Any

from redactor import __version__
from redactor.agent.config import AgentSettings
from redactor.agent.resolve import MAX_FREE_TEXT_CHARS
from vault.revocations import REVOCATION_DELAY_S

LEVELS_ASKED = ["masked", "use", "full"]

_ERROR = {
    "type": "object",
    "required": ["error", "request_id"],
    "properties": {
        "error": {"type": "string", "description": "a stable code, e.g. request_invalid"},
        "request_id": {"type": "string"},
        "field": {
            "type": "string",
            "description": "400 request_invalid only: the request field at fault ('body' for "
            "the document as a whole)",
        },
        "expected": {
            "type": "string",
            "description": "400 request_invalid only: what that field must be",
        },
    },
}


def _error(description: str, codes: list[str]) -> dict[str, Any]:
    return {
        "description": f"{description} (`error`: {', '.join(codes)})",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _common_errors() -> dict[str, Any]:
    return {
        "400": _error(
            "The body is not a valid request: `field` names the field, `expected` what it must be",
            ["request_invalid", "too_many_tokens"],
        ),
        "401": _error(
            "No bearer token, or one that fails verification (`unauthenticated`: the reason "
            "is audited, never answered); or a genuine token that is revoked by its `jti` or "
            "its subject (`token_revoked`: get a new token, retrying this one will not help). "
            "With `WWW-Authenticate: Bearer`",
            ["unauthenticated", "token_revoked"],
        ),
        "408": _error("The body did not arrive in time", ["request_timeout"]),
        "413": _error("The body is larger than the agent listener's limit", ["body_too_large"]),
        "429": _error(
            "Every token asked for in full was refused by the full-reveal rate limit; "
            "`Retry-After` says when to try again",
            ["rate_limited"],
        ),
        "503": _error(
            "The vault or the audit trail cannot answer, or this server could not read the "
            f"revocation list for more than {REVOCATION_DELAY_S:g} s; nothing was revealed",
            ["vault_unavailable", "audit_unavailable", "revocations_unavailable"],
        ),
    }


def _free_text(description: str) -> dict[str, Any]:
    return {
        "type": ["string", "null"],
        "maxLength": MAX_FREE_TEXT_CHARS,
        "description": description,
    }


def _request_fields() -> dict[str, Any]:
    return {
        "purpose": _free_text(
            "Why the value is needed: a purpose code of the policy (CHARGEBACK_DISPUTE, ...) or "
            "free text of the policy's minimum length. Required by the policy for `full`. "
            "Card numbers and SSNs in it are masked before the audit log."
        ),
        "ticket": _free_text(
            "The support ticket this is for (the policy may require it and its pattern)."
        ),
        "level": {
            "type": ["string", "null"],
            "enum": [*LEVELS_ASKED, None],
            "description": "The most the caller wants to see; the policy may grant less. "
            "Absent: the highest level the caller's roles grant.",
        },
    }


_DECISION_DENIED = {
    "type": "object",
    "required": ["token", "level", "denied"],
    "additionalProperties": False,
    "properties": {
        "token": {"type": "string"},
        "level": {"const": "none"},
        "denied": {
            "type": "string",
            "description": "why: no_permission, purpose_required, ticket_required, "
            "rate_limited, not_found, erased, invalid_format, key_missing, corrupt, ...",
        },
    },
}


def build_openapi(settings: AgentSettings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the agent API under `settings` (its limits)."""
    max_tokens = settings.max_tokens_per_request
    security = [{"bearer": []}]
    errors = _common_errors()
    resolve_request = {
        "type": "object",
        "required": ["tokens"],
        "additionalProperties": False,
        "properties": {
            "tokens": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_tokens,
                "items": {"type": "string"},
                "description": f"The tokens to resolve, at most {max_tokens} (repeats count).",
            },
            **_request_fields(),
        },
    }
    reveal_request = {
        "type": "object",
        "required": ["text"],
        "additionalProperties": False,
        "properties": {
            "text": {
                "type": "string",
                "description": f"A message holding tokens (at most {max_tokens} different ones).",
            },
            **_request_fields(),
        },
    }
    resolve_answer = {
        "type": "object",
        "required": ["results", "request_id"],
        "properties": {
            "results": {
                "type": "array",
                "description": "One result per token asked for, in order.",
                "items": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["token", "level", "value"],
                            "additionalProperties": False,
                            "properties": {
                                "token": {"type": "string"},
                                "level": {"enum": LEVELS_ASKED},
                                "value": {
                                    "type": "string",
                                    "description": "the value as the level shows it",
                                },
                            },
                        },
                        _DECISION_DENIED,
                    ]
                },
            },
            "request_id": {"type": "string"},
        },
    }
    reveal_answer = {
        "type": "object",
        "required": ["text", "tokens", "request_id"],
        "properties": {
            "text": {"type": "string", "description": "the text, each token as far as allowed"},
            "tokens": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["token", "level"],
                            "additionalProperties": False,
                            "properties": {
                                "token": {"type": "string"},
                                "level": {"enum": LEVELS_ASKED},
                            },
                        },
                        _DECISION_DENIED,
                    ]
                },
            },
            "request_id": {"type": "string"},
        },
    }

    def post(summary: str, request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "security": security,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": request}},
                },
                "responses": {
                    "200": {
                        "description": "A decision per token (partial success: some may be denied)",
                        "content": {"application/json": {"schema": answer}},
                    },
                    **errors,
                },
            }
        }

    outbound_params = [
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    outbound_op = {
        "summary": "Call an allow-listed outbound route with tokens in the body; redactor puts "
        "the values in on the way out (callers with `use` or `full`) and tokenises the answer",
        "security": security,
        "parameters": outbound_params,
        "responses": {
            "default": {
                "description": "The destination's answer, tokenised; or our error "
                "(destination_not_allowed 404, permission_denied 403, token_unresolvable 422, "
                "upstream_unavailable 502, upstream_timeout 504, ...)",
                "content": {"*/*": {"schema": {}}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "redactor agent API",
            "version": __version__,
            "description": (
                "Resolve vault tokens as far as the reveal policy lets the caller see them. "
                "Authenticate with `Authorization: Bearer <JWT>` from the configured identity "
                "provider (claims `sub`, `tenant`, `roles` by default). `exp`, `nbf` and `iat` "
                f"are checked with a leeway of {settings.auth.leeway_s:g} s for clock skew."
            ),
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {"Error": _ERROR},
        },
        "paths": {
            "/v1/resolve": post(
                "Resolve tokens: per token, the level granted and the value at it, or why not",
                resolve_request,
                resolve_answer,
            ),
            "/v1/reveal-text": post(
                "A text with each token shown as far as the caller may see it",
                reveal_request,
                reveal_answer,
            ),
            "/out/{name}/{path}": dict.fromkeys(
                ("get", "post", "put", "patch", "delete"), outbound_op
            ),
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
    }
