"""`redactor detect`: JSON lines in, JSON lines out, one per input, streaming."""

from __future__ import annotations

import json
from typing import TextIO

from redactor.detection import Detector
from redactor.errors import InputLineError


def _parse_line(line: str) -> tuple[object, str]:
    try:
        obj = json.loads(line)
    except ValueError:
        raise InputLineError("not JSON") from None
    if not isinstance(obj, dict):
        raise InputLineError("not an object")
    text = obj.get("text")
    if not isinstance(text, str):
        raise InputLineError("'text' missing or not a string")
    return obj.get("id"), text


def _id_of(line: str) -> object:
    # Best effort, for the error line: the id of a line whose `text` is wrong.
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj.get("id") if isinstance(obj, dict) else None


def run_detect(
    stdin: TextIO, stdout: TextIO, stderr: TextIO, detector: Detector, *, explain: bool = False
) -> int:
    """Stream `stdin` to `stdout`; a bad line gets an error on `stderr`. Returns the exit code.

    Memory stays constant: one line is held at a time. Error lines carry the line number, the
    id and a fixed reason, never the text. With `explain`, each output line also holds
    `explain`: every digit run's position, digit count, evidence and decision, never a digit.
    """
    failures = 0
    for lineno, line in enumerate(stdin, start=1):
        if not line.strip():
            continue
        try:
            item_id, text = _parse_line(line)
        except InputLineError as exc:
            failures += 1
            error = {"line": lineno, "id": _id_of(line), "error": exc.code, "reason": exc.detail}
            stderr.write(json.dumps(error) + "\n")
            continue
        findings = detector.find(text)
        out: dict[str, object] = {"id": item_id, "entities": [f.to_dict() for f in findings]}
        if explain:
            out["explain"] = [run.to_dict() for run in detector.explain(text)]
        stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    stdout.flush()
    return 1 if failures else 0
