"""Coverage-guided fuzzing (atheris) of the body codecs and the request-part codecs.

Each input picks a content type and a body; the contract checked is the one the proxy relies
on: `parse_body` returns a body or raises one of our typed BodyErrors (never another
exception), an unchanged body rebuilds to the exact input bytes, and an edit on any segment
rebuilds to a body that parses again. Findings are fixed and kept as regression tests in
tests/bodies/test_fuzz_regressions.py.

    pip install atheris
    python benchmarks/fuzz_codecs.py -max_total_time=120      # stops by itself
    python benchmarks/fuzz_codecs.py -runs=200000 corpus_dir/

Needs atheris (not a project dependency: only this script uses it).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from redactor.bodies import Edit, parse_body
    from redactor.bodies.http_parts import HeaderValues, UrlPath, UrlQuery
    from redactor.bodies.limits import BodyLimits
    from redactor.errors import BodyError

CONTENT_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b",
    "message/rfc822",
    "text/html",
    "text/plain",
    "multipart/mixed; boundary=b",
)
LIMITS = BodyLimits(max_fields=2000, max_parts=200, max_entities=5000, max_segments=2000)
TOKEN = "tok_v1_card_abcdefghijklmnopqrst_4242"  # noqa: S105 -- a token shape, not a secret


def _expect(condition: bool, what: str) -> None:
    # A fuzz finding must fail even under `python -O`, which drops asserts.
    if not condition:
        raise AssertionError(what)


def _check_edit(parsed, raw: bytes, content_type: str) -> None:
    if not parsed.segments:
        return
    segment = parsed.segments[len(raw) % len(parsed.segments)]
    out = parsed.rebuild({segment.index: [Edit(0, len(segment.text), TOKEN)]})
    # What we send on must parse again as the same type (a typed refusal would be our bug).
    parse_body(out, content_type, limits=None)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    content_type = CONTENT_TYPES[fdp.ConsumeIntInRange(0, len(CONTENT_TYPES) - 1)]
    mode = fdp.ConsumeIntInRange(0, 3)
    raw = fdp.ConsumeBytes(fdp.remaining_bytes())
    if mode == 3:
        text = raw.decode("utf-8", "surrogateescape")
        path = UrlPath(text)
        _expect(path.rebuild({}) == text, "path did not round-trip")
        # A query or header may hold a document (a raw message in `email=`, JSON) that does
        # not parse: a typed refusal (422) is the contract, as for bodies.
        try:
            query = UrlQuery(text)
            _expect(query.rebuild({}) == text, "query did not round-trip")
            HeaderValues([("X-A", text)], frozenset())
        except BodyError:
            return
        return
    try:
        parsed = parse_body(raw, content_type, limits=LIMITS, min_segment_digits=mode * 4)
    except BodyError:
        return
    _expect(parsed.rebuild({}) == raw, "body did not round-trip")
    try:
        _check_edit(parsed, raw, content_type)
    except BodyError as exc:
        raise AssertionError(f"rebuilt body no longer parses: {exc.code}") from None


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
