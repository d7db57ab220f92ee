"""`redactor config check`: everything `serve` would validate, without starting anything.

Reads the same file, environment and flags as `serve`; opens no listener, creates no file,
connects to no server. Lists every problem it finds, not just the first, each naming the file,
line, route and key where it can.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from redactor.agent.config import parse_agent
from redactor.agent.jwks import load_jwks_file
from redactor.agent.policy import load_policy
from redactor.audit.keys import load_audit_key
from redactor.config.listen import Listen, parse_listen
from redactor.config.yamlschema import node_at, yaml_file_problems
from redactor.errors import ConfigError
from redactor.ingress.config import RouteSettings, parse_route
from redactor.settings import (
    DEFAULT_ADMIN_LISTEN,
    DEFAULT_LISTEN,
    ROUTES_SCHEMA,
    Overrides,
    Settings,
    listener_clash,
    load_audit_trail_config,
    load_settings,
    load_vault_config,
    paths_resolved,
    pick,
)
from vault.errors import VaultError
from vault.keyring import parse_key_material, read_key_file


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    settings: Settings | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        s = self.settings
        if s is None:
            return f"config check: {len(self.problems)} problem(s)"
        agent = f", agent API on {s.agent.listen}" if s.agent else ""
        vault = f"sqlite {s.vault.sqlite_path}" if s.vault.backend == "sqlite" else "postgresql"
        return (
            f"config ok: {len(s.routes)} route(s) ({', '.join(r.name for r in s.routes)}), "
            f"proxy on {s.listen}, admin on {s.admin_listen}{agent}, vault {vault}, "
            f"audit trail {s.audit_log or 'stdout'}"
        )


class _Where:
    """Turns a key path in the file into `FILE line N: a.b.c`."""

    def __init__(self, source: str | None, root: yaml.Node | None) -> None:
        self.source, self.root = source, root

    def __call__(self, path: list[str | int], label: str | None = None) -> str:
        label = label or ".".join(str(p) for p in path) or "(top level)"
        if self.source is None:
            return label
        if self.root is None:
            return f"{self.source}: {label}"
        node = node_at(self.root, path)
        if path and node is self.root:
            return label  # not in the file: given by a flag or an environment variable
        return f"{self.source} line {node.start_mark.line + 1}: {label}"


def check_config(flags: Overrides, environ: Mapping[str, str]) -> CheckResult:
    result = CheckResult()
    config = flags.config or environ.get("REDACTOR_CONFIG")
    doc: dict[str, Any] = {}
    where = _Where(None, None)
    if config:
        data, root, problems = yaml_file_problems(Path(config), ROUTES_SCHEMA)
        result.problems += [_text(p) for p in problems]
        if data is None or problems:
            return result
        doc = paths_resolved(data, Path(config), flags, environ)
        where = _Where(config, root)
    _check_routes(doc, environ, where, result.problems)
    _check_listeners(flags, environ, doc, where, result.problems)
    _check_agent(flags, environ, doc, where, result.problems)
    _check_keys(flags, environ, result.problems)
    if result.problems:
        return result
    # Nothing found piecewise: the whole load must agree (anything it refuses is a problem).
    try:
        result.settings = load_settings(flags, environ)
    except (ConfigError, VaultError) as exc:
        result.problems.append(_text(exc))
        return result
    _check_vault_present(result.settings, result.problems)
    return result


def _text(exc: ConfigError | VaultError) -> str:
    """The error's own words, without the generic "configuration is invalid" prefix."""
    return exc.detail or exc.message


def _check_routes(
    doc: Mapping[str, Any], environ: Mapping[str, str], where: _Where, problems: list[str]
) -> None:
    parsed: list[tuple[int, RouteSettings]] = []
    for index, raw in enumerate(doc.get("routes", [])):
        label = f"route {raw.get('name')!r}"
        # Every secret a route names, each reported (parse_route stops at the first).
        missing = [
            (key, var)
            for key in ("sender_secret_env", "upstream_secret_env")
            if (var := raw.get("signature", {}).get(key)) and not environ.get(var)
        ]
        for key, var in missing:
            at = where(["routes", index, "signature", key], f"{label} signature.{key}")
            problems.append(f"{at}: environment variable {var} is not set")
        if missing:
            continue
        try:
            parsed.append((index, parse_route(raw, environ)))
        except ConfigError as exc:
            problems.append(f"{where(['routes', index], label)}: {_text(exc)}")
    by_prefix: dict[str, list[tuple[int, RouteSettings]]] = {}
    by_name: dict[str, list[int]] = {}
    for index, route in parsed:
        by_prefix.setdefault(route.path_prefix, []).append((index, route))
        by_name.setdefault(route.name, []).append(index)
    for prefix, same in by_prefix.items():
        if len(same) > 1:
            names = " and ".join(
                f"{r.name!r} ({where(['routes', i, 'path_prefix'], 'path_prefix')})"
                for i, r in same
            )
            problems.append(f"routes {names} have the same path_prefix {prefix!r}")
    for name, places in by_name.items():
        if len(places) > 1:
            lines = ", ".join(where(["routes", i, "name"], "name") for i in places)
            problems.append(f"route name {name!r} is used {len(places)} times ({lines})")


def _check_listeners(
    flags: Overrides,
    environ: Mapping[str, str],
    doc: Mapping[str, Any],
    where: _Where,
    problems: list[str],
) -> None:
    given = {
        "listen": pick(flags.listen, environ, "REDACTOR_LISTEN", doc.get("listen"), DEFAULT_LISTEN),
        "admin_listen": pick(
            flags.admin_listen,
            environ,
            "REDACTOR_ADMIN_LISTEN",
            doc.get("admin_listen"),
            DEFAULT_ADMIN_LISTEN,
        ),
        "agent_listen": pick(
            flags.agent_listen, environ, "REDACTOR_AGENT_LISTEN", doc.get("agent_listen"), None
        ),
    }
    parsed: dict[str, Listen] = {}
    for name, value in given.items():
        if value:
            try:
                parsed[name] = parse_listen(str(value), name)
            except ConfigError as exc:
                problems.append(f"{where([name])}: {_text(exc)}")
    clash = listener_clash(parsed)
    if clash:
        problems.append(clash)


def _check_agent(
    flags: Overrides,
    environ: Mapping[str, str],
    doc: Mapping[str, Any],
    where: _Where,
    problems: list[str],
) -> None:
    raw: Mapping[str, Any] = doc.get("agent", {})
    listen = pick(
        flags.agent_listen, environ, "REDACTOR_AGENT_LISTEN", doc.get("agent_listen"), None
    )
    if not listen and not raw:
        return
    jwks = pick(flags.jwks, environ, "REDACTOR_JWKS", raw.get("jwks"), None)
    policy = pick(flags.policy, environ, "REDACTOR_POLICY", raw.get("policy"), None)
    if jwks and not str(jwks).startswith(("http://", "https://")):
        try:
            load_jwks_file(Path(str(jwks)))
        except ConfigError as exc:
            problems.append(f"{where(['agent', 'jwks'])}: {_text(exc)}")
    if policy:
        try:
            load_policy(Path(str(policy)))
        except ConfigError as exc:
            problems.append(f"{where(['agent', 'policy'])}: {_text(exc)}")
    if listen and jwks and policy:
        try:
            parse_agent(
                raw,
                listen=parse_listen(str(listen), "agent_listen"),
                jwks=str(jwks),
                issuer=str(
                    pick(flags.jwt_issuer, environ, "REDACTOR_JWT_ISSUER", raw.get("issuer"), "")
                ),
                audience=str(
                    pick(
                        flags.jwt_audience,
                        environ,
                        "REDACTOR_JWT_AUDIENCE",
                        raw.get("audience"),
                        "",
                    )
                ),
                policy_path=Path(str(policy)),
            )
        except ConfigError as exc:
            problems.append(f"{where(['agent'])}: {_text(exc)}")


def _check_keys(flags: Overrides, environ: Mapping[str, str], problems: list[str]) -> None:
    try:
        vault = load_vault_config(flags, environ)
    except ConfigError as exc:
        problems.append(f"vault: {_text(exc)}")
    else:
        try:
            if vault.key_file is not None:
                read_key_file(vault.key_file)
            elif vault.inline_keys is not None:
                parse_key_material(vault.inline_keys.reveal())
            elif not vault.dev:
                problems.append(
                    "key ring: none configured: set REDACTOR_KEY_FILE (create one with "
                    "`redactor keys init --key-file FILE`) or REDACTOR_KEYS"
                )
        except VaultError as exc:
            problems.append(f"key ring: {_text(exc)}")
    try:
        trail = load_audit_trail_config(flags, environ)
    except ConfigError as exc:
        problems.append(f"audit key: {_text(exc)}")
        return
    try:
        load_audit_key(
            key_file=trail.audit_key_file,
            inline=trail.audit_key.reveal() if trail.audit_key is not None else None,
            dev_data_dir=None,
        )
    except ConfigError as exc:
        # Development mode generates an audit key on first start; checking creates nothing.
        none_configured = trail.audit_key_file is None and trail.audit_key is None
        if not (trail.dev and none_configured):
            problems.append(f"audit key: {_text(exc)}")


def _check_vault_present(settings: Settings, problems: list[str]) -> None:
    vault = settings.vault
    if vault.backend != "sqlite" or vault.create or vault.dev:
        return
    path = vault.sqlite_path
    if not path.exists():
        problems.append(
            f"vault: {path} does not exist (`redactor vault init` creates it; `serve` never does)"
        )
    elif not os.access(path, os.R_OK | os.W_OK):
        problems.append(f"vault: {path} is not readable and writable by this user")
