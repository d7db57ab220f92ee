"""The README's table of audit events is the list of what the code can write, no more, no less.

Found in the source, not by running it: every place an audit record is built (the record
classes and the helpers that wrap them), the event names given there, and the module-level
constants named `*_EVENT` (a string) or `*_EVENTS` / `AUDITED_COMMANDS` (a dict: its values)
that such a place takes its name from.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# Callables that build a record, and where their event name goes (positional index).
BUILDERS = {
    "AccessEvent": 0,
    "AuditEvent": 0,
    "DeliveryEvent": 0,
    "SystemEvent": 0,
    "access_event": 0,
    "_audit": 2,  # the console's helper: (request, resources, event, ...)
}
_NAMED = re.compile(r"^[A-Z_]*(_EVENT|_EVENTS|AUDITED_COMMANDS)$")
_KIND = re.compile(r"^[a-z]+(?:_[a-z]+)+$")


def _strings(node: ast.AST) -> set[str]:
    return {
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and _KIND.match(n.value)
    }


def emitted_kinds() -> set[str]:
    """Every event name the package can write, read from its source."""
    kinds: set[str] = set()
    for path in (ROOT / "redactor").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module-level constants named for events
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if not any(_NAMED.match(n) for n in names):
                    continue
                if isinstance(node.value, ast.Dict):
                    kinds |= {v for value in node.value.values for v in _strings(value)}
                elif isinstance(node.value, ast.Constant):
                    kinds |= _strings(node.value)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name not in BUILDERS:
                continue
            argument = next((k.value for k in node.keywords if k.arg == "event"), None)
            if argument is None and len(node.args) > BUILDERS[name]:
                argument = node.args[BUILDERS[name]]
            if argument is not None:
                kinds |= _strings(argument)
    return kinds


def readme_kinds() -> set[str]:
    """The event names in the first column of the README's event table."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("| event | written when | fields |")
    kinds: set[str] = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        first = line.split("|")[1]
        kinds |= set(re.findall(r"`([a-z_]+)`", first))
    return kinds


def test_every_event_in_the_readme_table_is_one_the_code_writes_and_vice_versa() -> None:
    code, readme = emitted_kinds(), readme_kinds()
    assert code - readme == set(), "written by the code, missing from the README's table"
    assert readme - code == set(), "in the README's table, never written by the code"


def test_the_source_scan_finds_each_way_an_event_is_named() -> None:
    # The scan itself, so the test above cannot pass by finding nothing: an inline name
    # (resolve), a positional one (console), a dict of names (delivery, key commands), a
    # named constant (outbound, checkpoints) and a conditional (message_scanned/redacted).
    assert {
        "token_revealed",
        "token_denied",
        "console_denied",
        "message_refused",
        "key_rotate",
        "token_not_used",
        "audit_checkpoint",
        "message_scanned",
        "message_redacted",
        "redactor_started",
    } <= emitted_kinds()
