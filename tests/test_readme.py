"""The README's quick start stays true: CI runs exactly the test command it gives."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shell_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, re.DOTALL)]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_commands = [b for b in _shell_blocks(readme) if "pytest" in b]
    assert test_commands, "README gives no test command"
    assert test_commands[0] in ci.splitlines()


def test_the_demo_command_installs_the_runtime_only() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    demo = next(b for b in _shell_blocks(readme) if "redactor demo" in b)
    # The demo needs no test extra (Playwright alone was 167 MB) and installs pinned versions.
    assert "[test]" not in demo
    assert "requirements/test.txt" not in demo
    assert "requirements/runtime.txt" in demo
