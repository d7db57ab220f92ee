"""The package layout keeps its arrows pointing down and inward (STYLE.md section 2).

Every import in the source tree, at module level or inside a function, is read with `ast`;
a rule broken anywhere fails with the module, line and imported name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SIDES = ("redactor.ingress", "redactor.agent", "redactor.backfill")
CORES = (
    "redactor.bodies",
    "redactor.detection",
    "redactor.redaction",
    "redactor.audit",
    "redactor.config",
    "redactor.runtime",
    "redactor.egress",
    "redactor.relay",
    "vault",
)
# What the composition root owns; a core that imports one of these reaches up into the app.
COMPOSITION = (
    "redactor.server",
    "redactor.resources",
    "redactor.settings",
    "redactor.cli",
    "redactor.ops",
)
ROOT_MODULES = {
    "__init__.py",
    "__main__.py",
    "cli.py",
    "settings.py",
    "server.py",
    "resources.py",
    "relay.py",
    "errors.py",
    "middleware.py",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, absolute imported name) for every import in `source`, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from redactor import ingress` imports the package redactor.ingress.
                yield node.lineno, f"{base}.{alias.name}"


def _within(name: str, prefixes: tuple[str, ...]) -> str | None:
    return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every broken arrow in one module's source, as readable lines."""
    found: list[str] = []
    own_side = _within(module, SIDES)
    own_core = _within(module, CORES)
    for line, name in imports_of(source, module, is_package):
        side = _within(name, SIDES)
        if own_core and side:
            found.append(f"{module}:{line}: core {own_core} imports side {name}")
        if own_core and _within(name, COMPOSITION):
            found.append(f"{module}:{line}: core {own_core} imports the composition root {name}")
        if own_side and side and side != own_side:
            found.append(f"{module}:{line}: side {own_side} imports the other side {name}")
        if own_side and _within(name, COMPOSITION):
            # Each side owns its settings and resources; the root composes them, never the
            # other way round.
            found.append(f"{module}:{line}: side {own_side} imports the composition root {name}")
        if own_core == "vault" and (_within(name, ("aiohttp",)) or _within(name, ("redactor",))):
            found.append(f"{module}:{line}: vault imports {name}")
    return found


def _source_files() -> Iterator[Path]:
    for top in ("redactor", "vault"):
        yield from sorted((ROOT / top).rglob("*.py"))


def test_no_module_breaks_the_import_direction() -> None:
    broken = [
        v
        for path in _source_files()
        for v in violations(
            _module_name(path), path.read_text(encoding="utf-8"), path.name == "__init__.py"
        )
    ]
    assert broken == []


def test_only_entry_points_and_the_composition_root_live_at_the_package_root() -> None:
    at_root = {p.name for p in (ROOT / "redactor").glob("*.py")}
    assert at_root - ROOT_MODULES == set()


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("redactor.detection.x", "from redactor.ingress.proxy import handle_proxy", "imports side"),
        ("redactor.bodies.x", "import redactor.agent.policy", "imports side"),
        ("redactor.audit.sink", "from redactor import agent", "imports side"),
        ("redactor.relay", "from redactor.settings import Settings", "composition root"),
        ("redactor.ingress.proxy", "from redactor.agent.auth import Principal", "other side"),
        ("redactor.agent.resolve", "from ..ingress import pipeline", "other side"),
        ("redactor.agent.resolve", "def f():\n    from redactor.ingress import proxy", "other side"),
        ("redactor.ingress.proxy", "from redactor.resources import RESOURCES", "composition root"),
        ("redactor.ingress.proxy", "from redactor.settings import RouteSettings", "composition root"),
        ("redactor.agent.outbound", "from redactor import settings", "composition root"),
        ("redactor.agent.policy", "from redactor.ops.yamlschema import parse_yaml", "composition root"),
        ("redactor.runtime.shared", "from redactor.agent.auth import Principal", "imports side"),
        ("redactor.backfill.run", "from redactor.ingress.pipeline import Pipeline", "other side"),
        ("redactor.backfill.zendesk", "from redactor.agent import policy", "other side"),
        ("redactor.backfill.run", "from redactor import settings", "composition root"),
        ("redactor.redaction.scanning", "from redactor.backfill import run", "imports side"),
        ("vault.stores.sqlite", "import aiohttp", "vault imports aiohttp"),
        ("vault.service", "from aiohttp import web", "vault imports aiohttp"),
        ("vault.service", "from redactor.errors import RedactorError", "vault imports redactor"),
    ],
)
def test_the_checker_catches_each_kind_of_broken_arrow(
    module: str, source: str, expected: str
) -> None:
    found = violations(module, source)
    assert len(found) == 1
    assert expected in found[0]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("redactor.ingress.proxy", "from redactor.relay import read_bounded"),
        ("redactor.agent.outbound", "from redactor.bodies import parse_body"),
        ("redactor.ingress.pipeline", "from .rewrite import Rewriter"),
        ("redactor.detection.digit_runs", "from redactor.detection.digits import digit_count"),
        ("redactor.server", "from redactor.agent.app import build_agent_app"),
        ("redactor.resources", "from redactor.ingress.resources import IngressResources"),
        ("redactor.agent.resources", "from redactor.runtime import SharedResources"),
        ("redactor.ingress.config", "from redactor.config.listen import Listen"),
        ("redactor.backfill.scan", "from redactor.redaction.scanning import scan_body"),
        ("redactor.ingress.pipeline", "from redactor.redaction.rewrite import Rewriter"),
    ],
)
def test_the_checker_allows_arrows_that_point_down(module: str, source: str) -> None:
    assert violations(module, source) == []


def _import_graph(prefix: str) -> dict[str, set[str]]:
    """Module -> the modules under `prefix` it imports (module level or inside functions)."""
    modules = {
        _module_name(path): path
        for path in _source_files()
        if _module_name(path).startswith(prefix)
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for _line, imported in imports_of(
            path.read_text(encoding="utf-8"), name, path.name == "__init__.py"
        ):
            # `from pkg.mod import name` names pkg.mod.name: the longest module it starts with.
            parts = imported.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if parts and ".".join(parts) != name:
                targets.add(".".join(parts))
        graph[name] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_body_codecs_import_each_other_in_one_direction() -> None:
    # Issue 18: json_body and nested imported each other; a string's reading is now handed in.
    assert _cycle(_import_graph("redactor.bodies.")) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
