"""Read the Dockerfile the way Docker does, enough for the tests: no daemon runs here.

`final_stage` gives the instructions of the image that ships (the last FROM); `documented_runs`
gives the `docker run` commands the header documents, with their mounts, ports and arguments.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        found.append((word.upper(), rest.strip()))
        current = ""
    return found


@dataclass
class Stage:
    """The instructions after one FROM."""

    base: str
    env: dict[str, str] = field(default_factory=dict)
    expose: list[int] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    user: str | None = None
    workdir: str | None = None
    healthcheck: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    copies: list[list[str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def _exec_form(args: str) -> list[str]:
    parsed = json.loads(args)
    assert isinstance(parsed, list), f"exec form expected: {args}"
    return [str(a) for a in parsed]


def stages(text: str) -> list[Stage]:
    """Every stage of the Dockerfile `text`."""
    result: list[Stage] = []
    for word, args in instructions(text):
        if word == "FROM":
            result.append(Stage(base=args))
            continue
        stage = result[-1]
        if word == "ENV":
            stage.env.update(dict(p.split("=", 1) for p in shlex.split(args)))
        elif word == "EXPOSE":
            stage.expose.extend(int(p.split("/")[0]) for p in args.split())
        elif word == "VOLUME":
            stage.volumes.extend(_exec_form(args) if args.startswith("[") else args.split())
        elif word == "USER":
            stage.user = args
        elif word == "WORKDIR":
            stage.workdir = args
        elif word == "HEALTHCHECK":
            stage.healthcheck = _exec_form(args.split(" CMD ", 1)[1].strip())
        elif word == "ENTRYPOINT":
            stage.entrypoint = _exec_form(args)
        elif word == "CMD":
            stage.cmd = _exec_form(args)
        elif word == "COPY":
            stage.copies.append(shlex.split(args))
        elif word == "RUN":
            stage.runs.append(args)
    return result


def final_stage(text: str | None = None) -> Stage:
    """The stage that becomes the image."""
    return stages(DOCKERFILE.read_text(encoding="utf-8") if text is None else text)[-1]


@dataclass
class DocumentedRun:
    """One `docker run` of the Dockerfile's header."""

    mounts: dict[str, str]  # container path -> host path or volume name
    ports: list[tuple[int, int]]  # (host, container)
    args: list[str]  # after the image name


def documented_runs(text: str | None = None) -> list[DocumentedRun]:
    """The `docker run ... redactor ARGS` commands in the header comment, in order."""
    text = DOCKERFILE.read_text(encoding="utf-8") if text is None else text
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line[1:].strip())
    joined = "\n".join(header).replace("\\\n", " ")
    runs = []
    for match in re.finditer(r"^docker run (.*)$", joined, re.MULTILINE):
        words = shlex.split(match.group(1))
        mounts: dict[str, str] = {}
        ports: list[tuple[int, int]] = []
        i = 0
        while i < len(words) and words[i].startswith("-"):
            if words[i] in ("-v", "--volume"):
                source, target = words[i + 1].split(":")[:2]
                mounts[target] = source
                i += 2
            elif words[i] in ("-p", "--publish"):
                host, container = words[i + 1].rsplit(":", 2)[-2:]
                ports.append((int(host), int(container)))
                i += 2
            else:
                i += 1
        assert words[i] == "redactor", f"image name expected: {words[i:]}"
        runs.append(DocumentedRun(mounts=mounts, ports=ports, args=words[i + 1 :]))
    return runs
