"""deploy/ and the Dockerfile name only what exists: ports, paths, commands and variables.

No Docker daemon or cluster runs here, so the files are parsed (PyYAML, tests/dockerfile.py)
and every name they use is checked against the code: REDACTOR_* variables against the string
constants the configuration code reads, commands against `redactor`'s own parser (sub-command
and flags), probe paths against the admin app's routes, ports against the listen settings
and EXPOSE, mounted paths against what the image's environment and the config file read.
`problems()` lists every mismatch; it runs on the real files (none) and on broken copies (the
one broken thing is reported), so a check that cannot fail fails here.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import importlib
import inspect
import json
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from aiohttp import web

from redactor.cli import build_parser
from redactor.ops.health import add_admin_routes
from tests.dockerfile import DocumentedRun, Stage, documented_runs, final_stage, stages

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
IMAGE = "redactor"
# Variables of other software the deploy files may set, and where that software reads them.
FOREIGN_VARIABLES = {"PGPASSFILE": "asyncpg.connect_utils"}


@dataclass
class DeployFiles:
    dockerfile: str
    compose: dict[str, Any]
    kubernetes: list[dict[str, Any]]
    config: dict[str, Any]
    config_text: str


def load() -> DeployFiles:
    return DeployFiles(
        dockerfile=(ROOT / "Dockerfile").read_text(encoding="utf-8"),
        compose=yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text(encoding="utf-8")),
        kubernetes=[
            doc
            for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
            if doc
        ],
        config=yaml.safe_load((DEPLOY / "config.yaml").read_text(encoding="utf-8")),
        config_text=(DEPLOY / "config.yaml").read_text(encoding="utf-8"),
    )


# --- what the code offers --------------------------------------------------------------------


@cache
def variables_read() -> frozenset[str]:
    """Every REDACTOR_* name that appears as a whole string constant in the code (an environ
    key), wherever the configuration code lives; docstrings never match a whole name."""
    names: set[str] = set()
    for path in [*ROOT.joinpath("redactor").rglob("*.py"), *ROOT.joinpath("vault").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"REDACTOR_[A-Z0-9_]+", node.value)
            ):
                names.add(node.value)
    return frozenset(names)


@cache
def admin_paths() -> frozenset[str]:
    """The paths the admin listener serves (redactor/ops/health.py)."""
    app = web.Application()
    add_admin_routes(app)
    return frozenset(resource.canonical for resource in app.router.resources())


@cache
def _parser() -> Any:
    parser = build_parser()
    _patch_tree(parser)
    return parser


def command_problem(argv: list[str]) -> str | None:
    """Why `redactor ARGV` would not parse, or None: sub-command and flags, by the real parser."""
    try:
        _parser().parse_args(argv)
    except _ParseError as exc:
        return f"`redactor {' '.join(argv)}` does not parse: {exc}"
    return None


class _ParseError(Exception):
    pass


def _raise_exit(status: int = 0, message: str | None = None) -> None:
    raise _ParseError(message or f"exit {status}")


def _raise_error(message: str) -> None:
    raise _ParseError(message)


def _patch_tree(parser: Any) -> None:
    parser.exit = _raise_exit
    parser.error = _raise_error
    for action in parser._actions:
        if isinstance(getattr(action, "choices", None), dict):
            for sub in action.choices.values():
                _patch_tree(sub)


def python_code_problems(code: str) -> Iterator[str]:
    """Every `from X import Y` in `code` whose module or name does not exist."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    yield f"python -c imports {node.module}.{alias.name}, which does not exist"


def _port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


# --- the checks ------------------------------------------------------------------------------


def listeners(files: DeployFiles, image: Stage, env: dict[str, str]) -> dict[str, tuple[str, int]]:
    """proxy/admin/agent -> (host, port) as `serve` would pick them: env over config file."""
    cfg = files.config
    return {
        "proxy": _port(env.get("REDACTOR_LISTEN") or cfg.get("listen", "127.0.0.1:8080")),
        "admin": _port(
            env.get("REDACTOR_ADMIN_LISTEN") or cfg.get("admin_listen", "127.0.0.1:9090")
        ),
        "agent": _port(env.get("REDACTOR_AGENT_LISTEN") or cfg["agent_listen"]),
    }


def _check_env(where: str, env: dict[str, str], known: frozenset[str]) -> Iterator[str]:
    for name in env:
        if name.startswith("REDACTOR_"):
            if name not in known:
                yield f"{where}: {name} is read nowhere in redactor/ or vault/"
        elif name in FOREIGN_VARIABLES:
            source = inspect.getsource(importlib.import_module(FOREIGN_VARIABLES[name]))
            if f"'{name}'" not in source and f'"{name}"' not in source:
                yield f"{where}: {name} is not read by {FOREIGN_VARIABLES[name]}"
        elif name not in ("PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
            yield f"{where}: {name} is not a variable redactor or its libraries read"


def _check_health_url(
    where: str, url: str, admin_port: int, paths: frozenset[str]
) -> Iterator[str]:
    parts = urlsplit(url)
    if parts.port != admin_port:
        yield f"{where}: health URL port {parts.port} is not the admin port {admin_port}"
    if parts.path not in paths:
        yield f"{where}: health URL path {parts.path} is not served by the admin listener"


def _read_paths(files: DeployFiles, config_path: str) -> set[str]:
    """Container paths the config file reads, resolved against its folder."""
    folder = posixpath.dirname(config_path)
    agent = files.config.get("agent", {})
    found = set()
    for value in (agent.get("jwks"), agent.get("policy")):
        if value and not value.startswith(("http://", "https://")):
            found.add(posixpath.normpath(posixpath.join(folder, value)))
    return found


def _shipped(image: Stage) -> set[str]:
    """Files the final stage copies in (destination paths)."""
    shipped = set()
    for words in image.copies:
        args = [w for w in words if not w.startswith("--")]
        *sources, dest = args
        for source in sources:
            shipped.add(
                posixpath.join(dest, posixpath.basename(source)) if dest.endswith("/") else dest
            )
    return shipped


def _check_mounts(
    where: str, mounted: set[str], env: dict[str, str], files: DeployFiles, image: Stage
) -> Iterator[str]:
    """Each file the environment names is mounted (or shipped); each mount is read by something."""
    config_path = env["REDACTOR_CONFIG"]
    shipped = _shipped(image)
    needed = {env["REDACTOR_KEY_FILE"], env["REDACTOR_AUDIT_KEY_FILE"]}
    if "PGPASSFILE" in env:
        needed.add(env["PGPASSFILE"])
    for path in sorted(needed - mounted):
        yield f"{where}: {path} (named by the environment) is not mounted"
    reads = _read_paths(files, config_path)
    for path in sorted(reads - mounted - shipped):
        yield f"{where}: {path} (read by the config) is neither mounted nor in the image"
    if env["REDACTOR_DATA_DIR"] not in mounted:
        yield f"{where}: the data directory {env['REDACTOR_DATA_DIR']} is not a volume"
    known = needed | reads | {config_path, env["REDACTOR_DATA_DIR"], "/tmp"}  # noqa: S108
    for path in sorted(mounted - known):
        yield f"{where}: {path} is mounted but nothing reads it"


def image_problems(files: DeployFiles) -> Iterator[str]:
    image = final_stage(files.dockerfile)
    known = variables_read()
    yield from _check_env("Dockerfile ENV", image.env, known)
    ports = listeners(files, image, image.env)
    for name, (host, _) in ports.items():
        if host != "0.0.0.0":  # noqa: S104 - a container listens on all its interfaces
            yield f"Dockerfile: the {name} listener binds {host}, not 0.0.0.0"
    if sorted(image.expose) != sorted(p for _, p in ports.values()):
        yield f"Dockerfile: EXPOSE {image.expose} is not the listen ports {sorted(ports.values())}"
    if image.volumes != [image.env["REDACTOR_DATA_DIR"]]:
        yield f"Dockerfile: VOLUME {image.volumes} is not REDACTOR_DATA_DIR"
    if image.user is None or image.user.split(":")[0] in ("0", "root"):
        yield "Dockerfile: the image must run as a non-root USER"
    if image.entrypoint != [IMAGE]:
        yield f"Dockerfile: ENTRYPOINT {image.entrypoint} is not [redactor]"
    for argv in (image.cmd, image.healthcheck[1:]):
        if problem := command_problem(argv):
            yield f"Dockerfile: {problem}"
    yield from _check_health_url(
        "Dockerfile HEALTHCHECK", image.healthcheck[-1], ports["admin"][1], admin_paths()
    )
    shipped = _shipped(image)
    if image.env["REDACTOR_CONFIG"] not in shipped:
        yield "Dockerfile: REDACTOR_CONFIG names a file the image does not ship"
    runs = documented_runs(files.dockerfile)
    for n, run in enumerate(runs, 1):
        yield from _check_documented_run(n, run, files, image, ports)


def _check_documented_run(
    n: int, run: DocumentedRun, files: DeployFiles, image: Stage, ports: dict[str, tuple[str, int]]
) -> Iterator[str]:
    where = f"Dockerfile header, docker run #{n}"
    argv = run.args or image.cmd
    if problem := command_problem(argv):
        yield f"{where}: {problem}"
    mounted = set(run.mounts)
    if argv[0] == "serve":
        yield from _check_mounts(where, mounted, image.env, files, image)
        if sorted(c for _, c in run.ports) != sorted(image.expose):
            yield f"{where}: publishes {run.ports}, not every EXPOSEd port {image.expose}"
    else:
        for name in ("REDACTOR_KEY_FILE", "REDACTOR_AUDIT_KEY_FILE"):
            if image.env[name] not in mounted:
                yield f"{where}: {name} ({image.env[name]}) is not mounted"


def _redactor_image(image: str | None) -> bool:
    return image is not None and image.split("/")[-1].split(":")[0] == IMAGE


def compose_problems(files: DeployFiles) -> Iterator[str]:
    image = final_stage(files.dockerfile)
    known = variables_read()
    paths = admin_paths()
    services = files.compose["services"]
    declared_secrets = files.compose.get("secrets", {})
    for name, service in services.items():
        if not _redactor_image(service.get("image")):
            continue
        where = f"docker-compose.yaml service {name}"
        env = {**image.env, **service.get("environment", {})}
        yield from _check_env(where, service.get("environment", {}), known)
        ports = listeners(files, image, env)
        if "entrypoint" in service:
            entry = service["entrypoint"]
            if entry[:2] != ["python", "-c"]:
                yield f"{where}: entrypoint {entry[:2]} is neither redactor nor python -c"
                continue
            yield from (f"{where}: {p}" for p in python_code_problems(entry[2]))
        else:
            argv = service.get("command", image.cmd)
            if problem := command_problem(argv):
                yield f"{where}: {problem}"
            mounted = {v.split(":")[1] for v in service.get("volumes", [])}
            for secret in service.get("secrets", []):
                ref = secret if isinstance(secret, str) else secret["source"]
                target = ref if isinstance(secret, str) else secret.get("target", ref)
                if ref not in declared_secrets:
                    yield f"{where}: secret {ref} is not declared"
                mounted.add(target if target.startswith("/") else f"/run/secrets/{target}")
            yield from _check_mounts(where, mounted, env, files, image)
            sources = [v.split(":")[0] for v in service.get("volumes", [])]
            sources += [
                declared_secrets.get(_secret_ref(x), {}).get("file", "")
                for x in service.get("secrets", [])
            ]
            for source in sources:
                yield from _check_host_file(where, source)
            if argv[0] == "serve":
                published = sorted(int(p.split(":")[-1]) for p in service.get("ports", []))
                if published != sorted(p for _, p in ports.values()):
                    yield f"{where}: publishes {published}, not the listen ports"
        health = service.get("healthcheck", {}).get("test")
        if health:
            if health[0] != "CMD" or (problem := command_problem(health[1:][1:])):
                yield f"{where}: healthcheck {health}: {problem if health[0] == 'CMD' else 'not exec form'}"
            if "network_mode" not in service:
                yield from _check_health_url(where, health[-1], ports["admin"][1], paths)
            elif health[1:] != [IMAGE, "health", "--url", health[-1]]:
                yield f"{where}: healthcheck {health} is not `redactor health`"
    redactor = services.get("redactor", {})
    if redactor.get("healthcheck", {}).get("test", [None])[1:] != image.healthcheck:
        yield "docker-compose.yaml: the redactor healthcheck is not the Dockerfile's HEALTHCHECK"
    build = next((s["build"] for s in services.values() if "build" in s), None)
    context = build["context"] if isinstance(build, dict) else build
    if context is None or not (DEPLOY / context / "Dockerfile").exists():
        yield "docker-compose.yaml: no service builds the image from the repository's Dockerfile"


def _secret_ref(secret: str | dict[str, str]) -> str:
    return secret if isinstance(secret, str) else secret["source"]


def _check_host_file(where: str, source: str) -> Iterator[str]:
    """A host file the compose file mounts: in the repository, or (under ./secrets/, made by
    the operator) named in the compose file's header, which says how to make it."""
    if not source.startswith("."):
        return
    if source.startswith("./secrets/"):
        header = (DEPLOY / "docker-compose.yaml").read_text(encoding="utf-8").split("\nname:")[0]
        if Path(source).name not in header:
            yield f"{where}: {source} is not among the secret files the header lists"
    elif not (DEPLOY / source).exists():
        yield f"{where}: {source} does not exist beside the compose file"


def _by_kind(files: DeployFiles, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in files.kubernetes if doc.get("kind") == kind]


def kubernetes_problems(files: DeployFiles) -> Iterator[str]:
    image = final_stage(files.dockerfile)
    known = variables_read()
    paths = admin_paths()
    config_maps = {d["metadata"]["name"]: d for d in _by_kind(files, "ConfigMap")}
    secrets = {d["metadata"]["name"]: d for d in _by_kind(files, "Secret")}
    image_uid = int((image.user or "0").split(":")[0])
    deployments = _by_kind(files, "Deployment")
    if not deployments:
        yield "kubernetes: no Deployment"
    for deployment in deployments:
        spec = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        pod_security = spec.get("securityContext", {})
        if not pod_security.get("runAsNonRoot") or pod_security.get("runAsUser") != image_uid:
            yield f"kubernetes: the pod must run as non-root uid {image_uid} (the image's USER)"
        containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
        sidecars = [c for c in containers if _redactor_image(c.get("image"))]
        if not any(c.get("args", image.cmd)[0] == "serve" for c in sidecars):
            yield "kubernetes: no redactor container runs `serve`"
        if len(spec.get("containers", [])) < 2:
            yield "kubernetes: redactor is not a sidecar (one container in the pod)"
        for container in sidecars:
            where = f"kubernetes container {container['name']}"
            env = dict(image.env)
            for item in container.get("env", []):
                env[item["name"]] = item.get("value", "<secret>")
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["key"] not in _secret_keys(secrets.get(ref["name"])):
                    yield f"{where}: {item['name']} refers to a Secret key {ref['name']}/{ref['key']} that does not exist"
            yield from _check_env(where, {i["name"]: "" for i in container.get("env", [])}, known)
            argv = container.get("args", image.cmd)
            if "command" in container:
                yield f"{where}: overrides the ENTRYPOINT"
            if problem := command_problem(argv):
                yield f"{where}: {problem}"
            security = container.get("securityContext", {})
            if not security.get("readOnlyRootFilesystem"):
                yield f"{where}: readOnlyRootFilesystem is not set"
            if security.get("allowPrivilegeEscalation", True):
                yield f"{where}: allowPrivilegeEscalation is not false"
            if not container.get("resources", {}).get("limits", {}).get("memory"):
                yield f"{where}: no memory limit"
            mounted: set[str] = set()
            for mount in container.get("volumeMounts", []):
                mounted.add(mount["mountPath"])
                volume = volumes.get(mount["name"])
                if volume is None:
                    yield f"{where}: mounts undeclared volume {mount['name']}"
                    continue
                if "configMap" in volume:
                    data = config_maps.get(volume["configMap"]["name"], {}).get("data", {})
                    if mount.get("subPath") not in data:
                        yield f"{where}: ConfigMap {volume['configMap']['name']} has no key {mount.get('subPath')}"
                if "secret" in volume:
                    keys = _secret_keys(secrets.get(volume["secret"]["secretName"]))
                    if mount.get("subPath") not in keys:
                        yield f"{where}: Secret {volume['secret']['secretName']} has no key {mount.get('subPath')}"
                if mount["mountPath"] == env["REDACTOR_DATA_DIR"] and mount.get("readOnly"):
                    yield f"{where}: the data volume is read-only"
            yield from _check_mounts(where, mounted, env, files, image)
            if argv[0] != "serve":
                continue
            ports = listeners(files, image, env)
            declared = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            if declared != {name: port for name, (_, port) in ports.items()}:
                yield f"{where}: ports {declared} are not the listen ports {ports}"
            probes = (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"))
            for probe, path in (*probes, ("startupProbe", "/healthz")):
                get = container.get(probe, {}).get("httpGet")
                if get is None:
                    if probe != "startupProbe":
                        yield f"{where}: no {probe}"
                    continue
                port = declared.get(get["port"], get["port"])
                if port != ports["admin"][1]:
                    yield f"{where}: {probe} port {get['port']} is not the admin port"
                if get["path"] not in paths:
                    yield f"{where}: {probe} path {get['path']} is not served by the admin listener"
                elif get["path"] != path:
                    yield f"{where}: {probe} checks {get['path']}, expected {path}"
        for service in _by_kind(files, "Service"):
            names = {p["name"] for c in spec.get("containers", []) for p in c.get("ports", [])}
            for port in service["spec"]["ports"]:
                if port["targetPort"] not in names:
                    yield f"kubernetes Service: targetPort {port['targetPort']} names no container port"
    for name, config_map in config_maps.items():
        text = config_map.get("data", {}).get("config.yaml")
        if text is not None and text != files.config_text:
            yield f"kubernetes ConfigMap {name}: config.yaml is not deploy/config.yaml"


def _secret_keys(secret: dict[str, Any] | None) -> set[str]:
    if secret is None:
        return set()
    return set(secret.get("stringData", {})) | set(secret.get("data", {}))


def config_problems(files: DeployFiles) -> Iterator[str]:
    schema = json.loads((ROOT / "policies" / "routes.schema.json").read_text(encoding="utf-8"))
    for error in jsonschema.Draft202012Validator(schema).iter_errors(files.config):
        yield f"deploy/config.yaml: {error.json_path}: {error.message}"
    image = final_stage(files.dockerfile)
    copied = [w for w in image.copies if w[-1] == image.env["REDACTOR_CONFIG"]]
    if [w[0] for w in copied] != ["deploy/config.yaml"]:
        yield "Dockerfile: the image's REDACTOR_CONFIG is not deploy/config.yaml"


def build_context_problems(files: DeployFiles) -> Iterator[str]:
    """Every COPY source exists in the repository and is not left out by .dockerignore."""
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in stages(files.dockerfile):
        for words in stage.copies:
            if any(w.startswith("--from") for w in words):
                continue
            for source in [w for w in words if not w.startswith("--")][:-1]:
                if not (ROOT / source).exists():
                    yield f"Dockerfile: COPY {source}: no such file in the repository"
                top = source.split("/")[0]
                if any(fnmatch.fnmatch(source, p) or fnmatch.fnmatch(top, p) for p in ignored):
                    yield f"Dockerfile: COPY {source} is left out of the build context by .dockerignore"


def problems(files: DeployFiles) -> list[str]:
    """Every mismatch between the deploy files and the code."""
    return [
        *image_problems(files),
        *compose_problems(files),
        *kubernetes_problems(files),
        *config_problems(files),
        *build_context_problems(files),
    ]


# --- the tests -------------------------------------------------------------------------------


def test_the_deploy_files_name_only_what_exists() -> None:
    assert problems(load()) == []


def _compose_service(files: DeployFiles, name: str) -> dict[str, Any]:
    return files.compose["services"][name]


def _sidecar(files: DeployFiles) -> dict[str, Any]:
    spec = _by_kind(files, "Deployment")[0]["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == "redactor")


def _set_env(files: DeployFiles) -> None:
    _compose_service(files, "redactor")["environment"]["REDACTOR_AGENT_PORT"] = "8081"


def _probe_path(files: DeployFiles) -> None:
    _sidecar(files)["readinessProbe"]["httpGet"]["path"] = "/ready"


def _sub_command(files: DeployFiles) -> None:
    _compose_service(files, "vault-init")["command"] = ["vault", "create"]


def _unknown_flag(files: DeployFiles) -> None:
    _sidecar(files)["args"] = ["serve", "--agent-port", "8081"]


def _expose(files: DeployFiles) -> None:
    files.dockerfile = files.dockerfile.replace("EXPOSE 8080 8081 9090", "EXPOSE 8080 9090")


def _health_port(files: DeployFiles) -> None:
    files.dockerfile = files.dockerfile.replace(
        '127.0.0.1:9090/readyz"]', '127.0.0.1:9091/readyz"]'
    )


def _first_run_without_audit_key(files: DeployFiles) -> None:
    files.dockerfile = files.dockerfile.replace(
        "#     -v $PWD/audit.key:/run/secrets/redactor-audit-key:ro \\\n#     -v redactor-data",
        "#     -v redactor-data",
    )


def _loopback_listener(files: DeployFiles) -> None:
    files.config["agent_listen"] = "127.0.0.1:8081"


def _config_map_drift(files: DeployFiles) -> None:
    config_map = _by_kind(files, "ConfigMap")[0]
    config_map["data"]["config.yaml"] = config_map["data"]["config.yaml"].replace("8081", "8082")


def _writable_root(files: DeployFiles) -> None:
    _sidecar(files)["securityContext"] = {
        **_sidecar(files)["securityContext"],
        "readOnlyRootFilesystem": False,
    }


def _secret_key(files: DeployFiles) -> None:
    _sidecar(files)["volumeMounts"] = copy.deepcopy(_sidecar(files)["volumeMounts"])
    for mount in _sidecar(files)["volumeMounts"]:
        if mount.get("subPath") == "keys.json":
            mount["subPath"] = "key.json"


def _python_name(files: DeployFiles) -> None:
    entry = _compose_service(files, "upstream")["entrypoint"]
    entry[2] = entry[2].replace("build_demo_upstream", "build_upstream")


def _unmounted_policy(files: DeployFiles) -> None:
    files.config["agent"]["policy"] = "policies/strict.yaml"


def _missing_key_mount(files: DeployFiles) -> None:
    _compose_service(files, "redactor")["secrets"] = ["redactor-audit-key", "pgpass"]


def _copy_missing_file(files: DeployFiles) -> None:
    files.dockerfile = files.dockerfile.replace(
        "COPY deploy/config.yaml", "COPY deploy/sidecar.yaml"
    )


BROKEN: list[tuple[str, Callable[[DeployFiles], None], str]] = [
    ("compose names an unknown REDACTOR_ variable", _set_env, "REDACTOR_AGENT_PORT"),
    ("readiness probe on a path nobody serves", _probe_path, "/ready"),
    ("a sub-command redactor does not have", _sub_command, "vault create"),
    ("a flag serve does not have", _unknown_flag, "--agent-port"),
    ("EXPOSE misses the agent port", _expose, "EXPOSE"),
    ("HEALTHCHECK on another port", _health_port, "9091"),
    ("first run without the audit key", _first_run_without_audit_key, "REDACTOR_AUDIT_KEY_FILE"),
    ("a listener on loopback", _loopback_listener, "127.0.0.1"),
    ("the ConfigMap drifted from deploy/config.yaml", _config_map_drift, "ConfigMap"),
    ("a writable root file system", _writable_root, "readOnlyRootFilesystem"),
    ("a Secret key that does not exist", _secret_key, "key.json"),
    ("python -c imports a missing name", _python_name, "build_upstream"),
    ("the config reads a file nobody provides", _unmounted_policy, "strict.yaml"),
    ("the key file is not mounted", _missing_key_mount, "/run/secrets/redactor-keys"),
    ("COPY of a file that does not exist", _copy_missing_file, "deploy/sidecar.yaml"),
]


@pytest.mark.parametrize(
    ("break_it", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_a_broken_copy_is_reported(break_it: Callable[[DeployFiles], None], expected: str) -> None:
    files = copy.deepcopy(load())
    break_it(files)
    found = problems(files)
    assert found, "the broken copy passed every check"
    assert any(expected in p for p in found), found
