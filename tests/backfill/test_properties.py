"""Property: whatever surrounds them, only the values change. Inputs of every streaming format
are generated with card numbers and SSNs among text full of what each format must get right
(quotes, commas, backslashes, escapes, line ends, non-ASCII, a CSV byte-order mark, mbox's
`>From ` lines, HTML markup); putting each token back to the
span it replaced gives the input byte for byte, and no card number is left."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backfill.conftest import CARD, CARD_2, DIGITS, SSN, FakeVault, Store, restore

WORDS = st.sampled_from(
    ["a", "b", "é", "😀", '"', "\\", ",", ";", "<b>", "&amp;", "\n", "\r\n", "\t", "{", "]", "x y"]
)
VALUES = st.sampled_from([f"card {CARD}", f"card {CARD_2}", f"SSN {SSN}"])
PIECE = st.one_of(WORDS, VALUES)


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(PIECE, max_size=8))
    return " ".join(parts)


@st.composite
def inputs(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(["jsonl", "json", "csv", "text", "mbox", "html"]))
    rows = draw(st.lists(st.tuples(texts(), texts()), min_size=1, max_size=5))
    if fmt == "jsonl":
        ascii_only = draw(st.booleans())
        end = draw(st.sampled_from(["\n", "\r\n"]))
        return fmt, "".join(
            json.dumps({"a": a, "b": {"c": [b]}}, ensure_ascii=ascii_only) + end for a, b in rows
        ).encode()
    if fmt == "json":
        doc = [{"id": n, "body": a, "html": f"<p>{b}</p>"} for n, (a, b) in enumerate(rows)]
        return fmt, json.dumps(doc, indent=draw(st.sampled_from([None, 2]))).encode()
    if fmt == "csv":
        out = io.StringIO()
        quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
        writer = csv.writer(out, quoting=quoting)
        writer.writerow(["body", "note"])
        writer.writerows(rows)
        bom = draw(st.sampled_from(["", "\ufeff"]))  # Excel writes one
        return fmt, (bom + out.getvalue()).encode()
    if fmt == "mbox":
        # mboxo/mboxrd: a body line that began with "From " is stored as ">From ".
        messages = [
            f"From ada@example.com Mon Dec  7 07:0{n % 10}:00 2026\n"
            f"From: ada@example.com\nSubject: {a.splitlines()[0] if a else ''}\n"
            f"Content-Type: text/plain; charset=utf-8\n\n{b}\n>From the desk: {a}\n\n"
            for n, (a, b) in enumerate(rows)
        ]
        return fmt, "".join(messages).encode()
    if fmt == "html":
        cells = "".join(f"<tr><td>{a}</td><td title=x>{b}</td></tr>\n" for a, b in rows)
        return fmt, f"<!doctype html><table>\n{cells}</table>\n".encode()
    return fmt, "\n".join(f"{a}\n\n{b}" for a, b in rows).encode()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=inputs())
def test_only_the_values_change(store: Store, case: tuple[str, bytes]) -> None:
    fmt, raw = case
    with tempfile.TemporaryDirectory(dir=store.root) as folder:
        source = Path(folder) / "input"
        source.write_bytes(raw)
        out = Path(folder) / "output"
        result = store.redact([source], output=str(out), fmt=fmt, tokens=FakeVault())
        assert result.code == 0, result.stderr
        redacted = out.read_bytes()
    assert restore(redacted) == raw
    text = redacted.decode("utf-8")
    for card in (CARD, CARD_2):
        assert card not in text
        assert DIGITS[card] not in text
