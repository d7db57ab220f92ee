"""`redactor detect`: the JSON-lines protocol, streaming, errors per line, exit code."""

import io
import json
import subprocess
import sys

from redactor.detection import Detector, find_entities
from redactor.ops.detect_cli import run_detect

PAN = "4111 1111 1111 1111"
SSN = "536-90-4399"


def _run(detector: Detector, lines: list[str]) -> tuple[int, list[dict], list[dict]]:
    out, err = io.StringIO(), io.StringIO()
    code = run_detect(io.StringIO("".join(lines)), out, err, detector)
    parse = lambda s: [json.loads(x) for x in s.getvalue().splitlines()]  # noqa: E731
    return code, parse(out), parse(err)


def test_each_input_line_gets_one_output_line_with_python_offsets(detector: Detector) -> None:
    text = f"card {PAN} and ssn {SSN} — ✓"
    code, out, err = _run(detector, [json.dumps({"id": 7, "text": text}) + "\n"])
    assert code == 0
    assert err == []
    [line] = out
    assert line["id"] == 7
    spans = [(e["entity"], text[e["start"] : e["end"]]) for e in line["entities"]]
    assert spans == [("CREDIT_CARD", PAN), ("US_SSN", SSN)]
    assert all(0 < e["score"] <= 1 for e in line["entities"])


def test_a_malformed_line_is_reported_and_the_rest_goes_on(detector: Detector) -> None:
    lines = [
        json.dumps({"id": "a", "text": f"ssn {SSN}"}) + "\n",
        "{not json at all " + PAN + "\n",
        json.dumps({"id": "c", "text": 12}) + "\n",
        json.dumps({"id": "d", "text": "nothing here"}) + "\n",
    ]
    code, out, err = _run(detector, lines)
    assert code == 1
    assert [o["id"] for o in out] == ["a", "d"]
    assert [(e["line"], e["id"]) for e in err] == [(2, None), (3, "c")]
    # The error stream never repeats the input's text.
    assert "4111" not in json.dumps(err)


def test_python_api_gives_the_same_spans_as_the_cli(detector: Detector) -> None:
    text = f"x {PAN} y"
    _, out, _ = _run(detector, [json.dumps({"id": 1, "text": text}) + "\n"])
    api = [f.to_dict() for f in find_entities(text)]
    assert out[0]["entities"] == api


def test_console_script_streams_from_stdin() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "redactor", "detect"],
        input=json.dumps({"id": 1, "text": f"ssn {SSN}"}) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["entities"][0]["entity"] == "US_SSN"
    assert "536" not in proc.stderr


def test_explain_gives_each_runs_evidence_and_decision_without_a_digit() -> None:
    card = "4111 1111 1111 1111"
    url_id = "4012888888881881"
    phone = "536904399"
    text = (
        f"my card {card} 03-2027\n"
        f"see https://acme.zendesk.com/agent/tickets/{url_id}\n"
        f"call me at {phone}"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "redactor", "detect", "--explain"],
        input=json.dumps({"id": "t", "text": text}) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    runs = out["explain"]
    assert [(r["start"], r["digits"], r["decision"]) for r in runs] == [
        (text.index(card), 22, "redact"),
        (text.index(url_id), 16, "keep"),
        (text.index(phone), 9, "keep"),
    ]
    [card_cand], [url_cand], [phone_cand] = (r["candidates"] for r in runs)
    assert card_cand["entity"] == "CREDIT_CARD"
    assert (card_cand["start"], card_cand["end"]) == (8, 8 + len(card))
    assert {"luhn", "iin", "card-grouping", "card-word"} <= set(card_cand["for"])
    assert url_cand["against"][0] == "url-path"
    assert url_cand["decision"] == "keep"
    assert phone_cand["entity"] == "US_SSN"
    assert "other-context" in phone_cand["against"]
    # The findings are what `redactor detect` reports without --explain.
    assert [(e["entity"], e["start"]) for e in out["entities"]] == [("CREDIT_CARD", 8)]
    # No value, nor any four of its digits in a row, appears in the explanation.
    explained = json.dumps(out["explain"])
    for value in (card.replace(" ", ""), url_id, phone):
        assert not any(value[i : i + 4] in explained for i in range(len(value) - 3))
    assert proc.stderr == ""
