"""The lock files stay current and are what CI and the image install.

`requirements/lock.sh` writes them from pyproject.toml; this checks, without a network, that
every dependency of pyproject.toml is pinned (with hashes), that the test lock keeps the
runtime lock's pins, and that .ci/run and the Dockerfile install from them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.dockerfile import final_stage, stages

ROOT = Path(__file__).resolve().parents[1]
REFRESH = "bash requirements/lock.sh"


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    text = path.read_text(encoding="utf-8")
    for match in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, re.MULTILINE):
        pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.mark.parametrize(
    ("lock", "extras"), [("runtime.txt", ()), ("test.txt", ("test",))], ids=["runtime", "test"]
)
def test_every_dependency_is_pinned_with_hashes(lock: str, extras: tuple[str, ...]) -> None:
    path = ROOT / "requirements" / lock
    text = path.read_text(encoding="utf-8")
    assert REFRESH in text.splitlines()[1], "the header names the command that refreshes it"
    pins = _pins(path)
    wanted = list(_project()["dependencies"])
    for extra in extras:
        wanted += _project()["optional-dependencies"][extra]
    assert sorted({_name(r) for r in wanted} - set(pins)) == []
    # Every pin carries at least one hash: pip then refuses any other file.
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2]):
        assert "--hash=sha256:" in block, block.splitlines()[0]


def test_the_runtime_lock_has_no_test_tool_and_the_test_lock_keeps_its_pins() -> None:
    runtime = _pins(ROOT / "requirements" / "runtime.txt")
    test = _pins(ROOT / "requirements" / "test.txt")
    assert {n: v for n, v in test.items() if n in runtime} == runtime
    for tool in ("pytest", "playwright", "hypothesis"):
        assert tool not in runtime


def test_ci_and_the_image_install_from_the_locks() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install --quiet -r requirements/test.txt" in ci
    assert "pip install --quiet --no-deps -e ." in ci
    assert "'.[test]'" not in ci
    build = stages((ROOT / "Dockerfile").read_text(encoding="utf-8"))[0]
    assert any("--require-hashes -r requirements/runtime.txt" in run for run in build.runs)
    assert any("install --no-deps ." in run for run in build.runs)
    assert not any("requirements/test.txt" in " ".join(c) for c in final_stage().copies)
