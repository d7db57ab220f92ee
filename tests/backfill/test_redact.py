"""`redact_files` end to end: only values change, same tokens as the proxy, dry run, in-place
interruption and resume, workers, audit, and no value anywhere but where it was replaced."""

from __future__ import annotations

import asyncio
import base64
import email
import json
import shutil
from email import policy
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from redactor.backfill import run as run_module
from redactor.backfill.run import CHECKPOINT_SUFFIX, PARTIAL_SUFFIX
from redactor.detection import DetectionOptions, Detector
from redactor.ingress.pipeline import Pipeline
from redactor.redaction.rewrite import Rewriter
from redactor.runtime.entities import VaultAdapter
from tests.backfill.conftest import CARD, CARD_2, DIGITS, SSN, TENANT, FakeVault, Store, restore
from vault import find_tokens
from vault.startup import open_vault

SAMPLES: dict[str, bytes] = {
    "export.jsonl": (
        f'{{"id": 1, "comment": "card {CARD} thanks", "html": "<p>ssn {SSN}</p>"}}\n'
        '{"id": 2, "comment": "nothing here", "n": 123456789012}\r\n'
        "\n"
        f'{{"id": 3, "nested": "{{\\"card\\": \\"{CARD_2}\\"}}", "é": "caf\\u00e9"}}\n'
        f"this line is not JSON, card {CARD}\n"
    ).encode(),
    "tickets.json": (
        f'[\n  {{"id": 1, "body": "card {CARD}"}},\n  {{"id": 2, "body": "none"}},\n'
        f'  {{"id": 3, "comments": [{{"html": "<b>ssn</b> {SSN}"}}]}}\n]\n'
    ).encode(),
    "rows.csv": (
        "id,ssn,body\r\n"
        f'1,{SSN},"she wrote ""card {CARD}"", twice"\r\n'
        '2,,"a, b\r\nc"\r\n'
        f'3,x,"{{""card"": ""{CARD_2}""}}"\r\n'
    ).encode(),
    "message.eml": (
        "From: a@example.com\r\nSubject: order\r\nContent-Type: text/plain\r\n\r\n"
        f"My card is {CARD} and SSN {SSN}.\r\n"
    ).encode(),
    "box.mbox": (
        "From a@example.com Mon Dec  7 07:00:00 2026\n"
        f"Subject: one\n\ncard {CARD}\n\n"
        "From b@example.com Mon Dec  7 07:01:00 2026\n"
        f"Subject: two\nContent-Type: text/html\n\n<p>ssn {SSN}</p>\n"
    ).encode(),
    "page.html": f"<html><body><p>card {CARD}</p><!-- {CARD_2} --><p>é</p></body></html>\n".encode(),
    "notes.txt": f"first\n\ncard {CARD}\nssn {SSN}\nlast".encode(),
}
ITEMS_WITH_VALUES = {
    "export.jsonl": 3,
    "tickets.json": 2,
    "rows.csv": 2,
    "message.eml": 1,
    "box.mbox": 2,
    "page.html": 1,
    "notes.txt": 1,
}


def _write(root: Path, name: str) -> Path:
    path = root / name
    path.write_bytes(SAMPLES[name])
    return path


def _no_value(data: str | bytes) -> None:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    for span, digits in DIGITS.items():
        assert span not in text
        assert digits not in text


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_format_changes_only_the_values(store: Store, name: str) -> None:
    source = _write(store.root, name)
    out = store.root / f"out-{name}"
    vault = FakeVault()
    result = store.redact([source], output=str(out), tokens=vault)
    assert result.code == 0, result.stderr
    redacted = out.read_bytes()
    _no_value(redacted)
    assert restore(redacted) == SAMPLES[name]
    assert vault.calls == ITEMS_WITH_VALUES[name]  # one vault round trip per item with values
    assert source.read_bytes() == SAMPLES[name]


def test_a_value_in_a_base64_part_is_replaced_in_the_decoded_text(store: Store) -> None:
    body = base64.b64encode(f"card {CARD}\n".encode()).decode()
    raw = (
        "From: a@example.com\nMIME-Version: 1.0\nContent-Type: text/plain\n"
        f"Content-Transfer-Encoding: base64\n\n{body}\n"
    ).encode()
    source = store.root / "b64.eml"
    source.write_bytes(raw)
    out = store.root / "out.eml"
    assert store.redact([source], output=str(out), tokens=FakeVault()).code == 0
    message = email.message_from_bytes(out.read_bytes(), policy=policy.default)
    text = message.get_content()
    _no_value(text)
    assert restore(text.encode()) == f"card {CARD}\n".encode()


def test_the_token_is_the_one_the_proxy_gives_the_same_value(store: Store) -> None:
    source = _write(store.root, "export.jsonl")
    out = store.root / "out.jsonl"
    assert store.redact([source], output=str(out)).code == 0
    file_tokens = set(find_tokens(out.read_text()))

    async def proxy_token() -> set[str]:
        vault = await open_vault(store.config, create=False)
        try:
            pipeline = Pipeline(Detector(DetectionOptions()), Rewriter(), VaultAdapter(vault), 5.0)
            body = json.dumps({"comment": f"card {CARD}", "other": f"ssn {SSN}"}).encode()
            redaction = await pipeline.redact(
                body, content_type="application/json", content_encoding=None, tenant=TENANT
            )
            return set(find_tokens(redaction.body.decode()))
        finally:
            await vault.close()

    from_proxy = asyncio.run(proxy_token())
    assert len(from_proxy) == 2
    assert from_proxy <= file_tokens


def test_dry_run_touches_neither_the_files_nor_the_vault(store: Store) -> None:
    source = _write(store.root, "export.jsonl")
    before = sorted(p.name for p in store.root.iterdir())
    vault_before = (store.root / "data" / "vault.db").read_bytes()
    result = store.redact([source], dry_run=True, tokens=FakeVault())
    assert result.code == 0, result.stderr
    assert "3 items would change" in result.stderr
    assert "CREDIT_CARD 3, US_SSN 1" in result.stderr
    assert source.read_bytes() == SAMPLES["export.jsonl"]
    after = sorted(p.name for p in store.root.iterdir() if not p.name.startswith("audit-cli"))
    assert after == before
    assert (store.root / "data" / "vault.db").read_bytes() == vault_before
    assert result.stdout == b""


def _many_lines(n: int) -> bytes:
    return b"".join(
        (f'{{"i": {i}, "c": "card {CARD}"}}\n' if i % 3 == 0 else f'{{"i": {i}}}\n').encode()
        for i in range(n)
    )


def test_an_interrupted_in_place_run_leaves_the_input_whole_and_resume_finishes_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _many_lines(300)
    source = store.root / "big.jsonl"
    source.write_bytes(raw)
    small = {"batch_bytes": 200, "checkpoint_bytes": 400}
    real = run_module.rebuild_item
    calls = 0

    def interrupted(*args: object) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 40:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the file
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "rebuild_item", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.redact([source], in_place=True, tokens=FakeVault(), **small)
    assert source.read_bytes() == raw
    checkpoint = source.with_name(source.name + CHECKPOINT_SUFFIX)
    assert checkpoint.exists()
    assert source.with_name(source.name + PARTIAL_SUFFIX).exists()
    assert '"phase":"failed"' in store.audit_text()
    assert '"error":"interrupted"' in store.audit_text()

    monkeypatch.setattr(run_module, "rebuild_item", real)
    vault = FakeVault()
    resumed = store.redact([source], in_place=True, resume=True, tokens=vault, **small)
    assert resumed.code == 0, resumed.stderr
    assert 0 < vault.calls < 100  # it went on from the checkpoint, not from the start
    assert restore(source.read_bytes()) == raw
    _no_value(source.read_bytes())
    assert "300 items scanned" in resumed.stderr
    assert "100 items changed" in resumed.stderr
    assert not checkpoint.exists()
    assert not source.with_name(source.name + PARTIAL_SUFFIX).exists()


def test_resume_refuses_a_checkpoint_of_an_input_that_changed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = store.root / "big.jsonl"
    source.write_bytes(_many_lines(300))
    out = store.root / "out.jsonl"

    def boom(*args: object) -> bytes:
        raise KeyboardInterrupt

    real = run_module.rebuild_item
    monkeypatch.setattr(run_module, "rebuild_item", boom)
    small = {"batch_bytes": 200, "checkpoint_bytes": 1}
    # The first item with a value is the first line: the first batch fails before a checkpoint.
    source.write_bytes(b'{"i": -1}\n' * 40 + _many_lines(300))
    with pytest.raises(KeyboardInterrupt):
        store.redact([source], output=str(out), tokens=FakeVault(), **small)
    assert out.with_name(out.name + CHECKPOINT_SUFFIX).exists()
    monkeypatch.setattr(run_module, "rebuild_item", real)
    source.write_bytes(source.read_bytes() + b'{"i": "added"}\n')
    result = store.redact([source], output=str(out), resume=True, tokens=FakeVault(), **small)
    assert result.code == 1
    assert "checkpoint does not belong to this input" in result.stderr
    assert not out.exists()


def test_two_jobs_write_what_one_job_writes(store: Store) -> None:
    raw = _many_lines(2000)
    source = store.root / "big.jsonl"
    source.write_bytes(raw)
    one, two = store.root / "one.jsonl", store.root / "two.jsonl"
    assert store.redact([source], output=str(one), batch_bytes=4096).code == 0
    result = store.redact([source], output=str(two), jobs=2, batch_bytes=4096)
    assert result.code == 0, result.stderr
    assert two.read_bytes() == one.read_bytes()
    assert len(set(find_tokens(one.read_text()))) == 1


def test_no_value_reaches_output_streams_logs_audit_or_file_names(store: Store) -> None:
    folder = store.root / "in"
    folder.mkdir()
    named = folder / f"customer {CARD}.jsonl"  # a file named after what it holds
    named.write_bytes(SAMPLES["export.jsonl"])
    broken = folder / "broken.json"
    broken.write_bytes(f'[{{"card": "{CARD}"}}, {{"ssn": "{SSN}'.encode())
    outdir = store.root / "out"
    outdir.mkdir()
    with capture_logs() as logs:
        result = store.redact([named, broken], output=str(outdir))
    assert result.code == 1  # the broken array stops the run, after the first input is done
    _no_value(result.stderr)
    _no_value(result.stdout)
    _no_value(repr(logs))
    audit = store.audit_text()
    assert '"phase":"started"' in audit
    assert '"phase":"failed"' in audit
    assert "customer [CREDIT_CARD].jsonl" in audit
    _no_value(audit)
    # Only the input and its output (the operator's own name for it) hold the name.
    for path in store.root.rglob("*"):
        if path.name != named.name:
            _no_value(path.name)
    _no_value((outdir / named.name).read_bytes())
    assert not (outdir / "broken.json").exists()


def test_each_run_is_audited_with_operator_inputs_and_counts(store: Store) -> None:
    source = _write(store.root, "rows.csv")
    assert store.redact([source], output=str(store.root / "o.csv")).code == 0
    records = [json.loads(line) for line in store.audit_text().splitlines()]
    started, finished = (r for r in records if r.get("event") == "redact_files")
    assert started["phase"] == "started"
    assert "items" not in started
    assert finished["phase"] == "finished"
    assert finished["inputs"] == [str(source)]
    assert finished["output"] == str(store.root / "o.csv")
    assert "@" in finished["operator"]
    assert finished["tenant"] == TENANT
    assert (finished["items"], finished["items_changed"]) == (4, 2)
    assert finished["values"] == {"CREDIT_CARD": 2, "US_SSN": 1}


def test_standard_input_goes_to_standard_output(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    raw = SAMPLES["notes.txt"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(raw))))
    result = store.redact(["-"], tokens=FakeVault())
    assert result.code == 0, result.stderr
    assert restore(result.stdout) == raw
    _no_value(result.stdout)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({}, "-o OUTPUT, --in-place or --dry-run"),
        ({"in_place": True, "output": "x"}, "not both"),
        ({"jobs": 0}, "--jobs"),
    ],
)
def test_a_bad_command_line_changes_nothing(store: Store, options: dict, words: str) -> None:
    source = _write(store.root, "notes.txt")
    result = store.redact([source], **options)
    assert result.code == 2
    assert words in result.stderr
    assert source.read_bytes() == SAMPLES["notes.txt"]
    assert store.audit_text() == ""


def test_an_input_copied_twice_gets_the_same_tokens_in_both(store: Store) -> None:
    source = _write(store.root, "tickets.json")
    copy = store.root / "copy.json"
    shutil.copy(source, copy)
    outdir = store.root / "out"
    outdir.mkdir()
    assert store.redact([source, copy], output=str(outdir)).code == 0
    assert (outdir / "tickets.json").read_bytes() == (outdir / "copy.json").read_bytes()


def test_a_terminal_gets_a_progress_bar_without_values(store: Store) -> None:
    source = store.root / "big.jsonl"
    source.write_bytes(_many_lines(300))
    out = store.root / "out.jsonl"
    result = store.redact([source], output=str(out), tokens=FakeVault(), tty=True, batch_bytes=500)
    assert result.code == 0
    bar, summary = result.stderr.rsplit("\n", 2)[:2]
    assert "big.jsonl" in bar
    assert "items=300" in bar
    assert "changed=100" in bar
    assert "300 items scanned" in summary
    _no_value(result.stderr)


def test_an_unexpected_error_quoting_a_value_reaches_neither_terminal_nor_audit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def leaky(*args: object) -> bytes:
        raise ValueError(f"cannot rebuild {CARD}")  # a third-party message quoting its input

    monkeypatch.setattr(run_module, "rebuild_item", leaky)
    source = _write(store.root, "export.jsonl")
    result = store.redact([source], output=str(store.root / "o.jsonl"), tokens=FakeVault())
    assert result.code == 1
    assert "internal error" in result.stderr
    _no_value(result.stderr)
    assert '"error":"internal_error"' in store.audit_text()
    _no_value(store.audit_text())


def test_without_a_terminal_progress_is_a_plain_line(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redactor.backfill import progress

    monkeypatch.setattr(progress, "PLAIN_INTERVAL_S", 0.0)  # a line per batch
    source = store.root / "big.jsonl"
    source.write_bytes(_many_lines(300))
    result = store.redact(
        [source], output=str(store.root / "o.jsonl"), tokens=FakeVault(), batch_bytes=2000
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("redact: ")]
    assert len(lines) > 3
    assert "big.jsonl" in lines[0]
    assert " items, " in lines[0]
    assert " values, " in lines[0]
    assert "MB/s" in lines[0]
    _no_value(result.stderr)


def test_in_place_keeps_mode_and_owner_and_the_partial_file_is_never_more_readable(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat

    raw = _many_lines(300)
    source = store.root / "private.jsonl"
    source.write_bytes(raw)
    source.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(source, 4321, 4322)  # another user's file, redacted by root
    owner = (source.stat().st_uid, source.stat().st_gid)
    small = {"batch_bytes": 200, "checkpoint_bytes": 400}
    real = run_module.rebuild_item
    calls = 0

    def interrupted(*args: object) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 40:
            raise KeyboardInterrupt
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "rebuild_item", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.redact([source], in_place=True, tokens=FakeVault(), **small)
    partial = source.with_name(source.name + PARTIAL_SUFFIX)
    # Whatever the umask, the copy in progress is no more readable than its input, and the
    # checkpoint (digests of the input's bytes) is its owner's only.
    assert stat.S_IMODE(partial.stat().st_mode) == 0o640
    checkpoint = source.with_name(source.name + CHECKPOINT_SUFFIX)
    assert stat.S_IMODE(checkpoint.stat().st_mode) == 0o600

    monkeypatch.setattr(run_module, "rebuild_item", real)
    done = store.redact([source], in_place=True, resume=True, tokens=FakeVault(), **small)
    assert done.code == 0, done.stderr
    assert restore(source.read_bytes()) == raw
    assert stat.S_IMODE(source.stat().st_mode) == 0o640
    assert (source.stat().st_uid, source.stat().st_gid) == owner


def test_in_place_through_a_symbolic_link_redacts_the_file_it_names(store: Store) -> None:
    real = _write(store.root, "export.jsonl")
    link = store.root / "latest.jsonl"
    link.symlink_to(real.name)
    result = store.redact([link], in_place=True, tokens=FakeVault())
    assert result.code == 0, result.stderr
    assert link.is_symlink()  # still the operator's link, now to a clean file
    _no_value(real.read_bytes())
    assert restore(real.read_bytes()) == SAMPLES["export.jsonl"]
    assert not list(store.root.glob("*.redact-*"))  # no partial or checkpoint left


def test_in_place_warns_that_other_hard_links_keep_the_original(store: Store) -> None:
    source = _write(store.root, "export.jsonl")
    other = store.root / "backup.jsonl"
    other.hardlink_to(source)
    result = store.redact([source], in_place=True, tokens=FakeVault())
    assert result.code == 0, result.stderr
    assert "1 other hard link(s) to this file keep the original bytes" in result.stderr
    _no_value(source.read_bytes())


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("missing/out.jsonl", "the directory of -o OUTPUT does not exist"),
        ("missing/", "-o names a directory that does not exist"),
    ],
)
def test_an_output_in_a_folder_that_does_not_exist_is_refused_before_anything_runs(
    store: Store, output: str, words: str
) -> None:
    source = _write(store.root, "export.jsonl")
    result = store.redact([source], output=f"{store.root}/{output}")
    assert result.code == 2
    assert words in result.stderr
    assert store.audit_text() == ""
    assert not (store.root / "missing").exists()


def test_two_inputs_with_one_name_are_refused_for_one_output_folder(store: Store) -> None:
    for folder in ("a", "b"):
        (store.root / folder).mkdir()
        (store.root / folder / "tickets.json").write_bytes(SAMPLES["tickets.json"])
    outdir = store.root / "out"
    outdir.mkdir()
    inputs = [store.root / "a" / "tickets.json", store.root / "b" / "tickets.json"]
    result = store.redact(inputs, output=str(outdir))
    assert result.code == 2
    assert "two inputs have the same file name" in result.stderr
    assert list(outdir.iterdir()) == []


def test_resume_refuses_an_input_edited_with_its_size_and_time_put_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    raw = _many_lines(300)
    source = store.root / "big.jsonl"
    source.write_bytes(raw)
    out = store.root / "out.jsonl"
    real = run_module.rebuild_item
    calls = 0

    def interrupted(*args: object) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 60:
            raise KeyboardInterrupt
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "rebuild_item", interrupted)
    small = {"batch_bytes": 200, "checkpoint_bytes": 400}
    with pytest.raises(KeyboardInterrupt):
        store.redact([source], output=str(out), tokens=FakeVault(), **small)
    monkeypatch.setattr(run_module, "rebuild_item", real)
    assert out.with_name(out.name + CHECKPOINT_SUFFIX).exists()
    # Same size, same modification time (rsync -t, cp -p, touch -r), other bytes.
    before = source.stat()
    source.write_bytes(raw.replace(b'{"i": 1}', b'{"i": 7}', 1))
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.stat().st_size == before.st_size
    result = store.redact([source], output=str(out), resume=True, tokens=FakeVault(), **small)
    assert result.code == 1
    assert "checkpoint does not belong to this input" in result.stderr
    assert not out.exists()


def test_an_archive_or_compressed_input_is_refused_not_passed_as_clean(store: Store) -> None:
    import gzip
    import io
    import zipfile

    text = f"card {CARD}\n".encode() * 50
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tickets.txt", text)
    for name, data, kind in (
        ("tickets.zip", packed.getvalue(), "zip"),
        ("dump.jsonl.gz", gzip.compress(text), "gzip"),
        ("scan.pdf", b"%PDF-1.4\n" + text, "PDF"),
    ):
        source = store.root / name
        source.write_bytes(data)
        out = store.root / f"clean-{name}"
        result = store.redact([source], output=str(out), tokens=FakeVault())
        assert result.code == 2, name
        assert f"an input is a {kind}" in result.stderr
        assert "whose values redact cannot read" in result.stderr
        assert not out.exists()
    assert store.audit_text() == ""


def test_resume_refuses_a_damaged_checkpoint_clearly(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _many_lines(300)
    source = store.root / "big.jsonl"
    source.write_bytes(raw)
    out = store.root / "out.jsonl"
    real = run_module.rebuild_item
    calls = 0

    def interrupted(*args: object) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 60:
            raise KeyboardInterrupt
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "rebuild_item", interrupted)
    small = {"batch_bytes": 200, "checkpoint_bytes": 400}
    with pytest.raises(KeyboardInterrupt):
        store.redact([source], output=str(out), tokens=FakeVault(), **small)
    monkeypatch.setattr(run_module, "rebuild_item", real)
    checkpoint = out.with_name(out.name + CHECKPOINT_SUFFIX)
    data = json.loads(checkpoint.read_text())
    del data["tally"]  # a checkpoint cut by hand, or by a tool
    checkpoint.write_text(json.dumps(data))
    result = store.redact([source], output=str(out), resume=True, tokens=FakeVault(), **small)
    assert result.code == 1
    assert "checkpoint does not belong to this input" in result.stderr
    assert "internal error" not in result.stderr


@pytest.mark.parametrize("batch_bytes", [7, 64, 333, 1 << 20])
def test_two_jobs_reading_their_own_ranges_write_what_one_job_writes(
    store: Store, batch_bytes: int
) -> None:
    # Ranges smaller than a line, cut inside CRLF, blank lines, a line that is not JSON and a
    # last line without its line end: the workers' ranges must tile the lines exactly.
    raw = (
        SAMPLES["export.jsonl"] * 3
        + b"\r\n\n"
        + _many_lines(60)
        + f'{{"last": "card {CARD}"}}'.encode()
    )
    source = store.root / "mixed.jsonl"
    source.write_bytes(raw)
    one, two = store.root / "one.jsonl", store.root / "two.jsonl"
    first = store.redact([source], output=str(one), tokens=FakeVault())
    assert first.code == 0, first.stderr
    second = store.redact(
        [source], output=str(two), jobs=2, batch_bytes=batch_bytes, tokens=FakeVault()
    )
    assert second.code == 0, second.stderr
    assert two.read_bytes() == one.read_bytes()
    assert restore(two.read_bytes()) == raw

    # The same counts: items, bytes, values, items changed (all but the time).
    def counts(stderr: str) -> str:
        import re

        return re.sub(r"; [\d.]+ s \([\d.]+ MB/s\)", "", stderr.strip().splitlines()[-1])

    assert counts(second.stderr) == counts(first.stderr)


def test_an_interrupted_two_job_run_in_place_resumes_to_what_one_job_writes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _many_lines(300)
    source = store.root / "big.jsonl"
    source.write_bytes(raw)
    expected = store.root / "one.jsonl"
    assert store.redact([source], output=str(expected), tokens=FakeVault()).code == 0
    small = {"jobs": 2, "batch_bytes": 200, "checkpoint_bytes": 400}
    real = run_module.rebuild_item
    calls = 0

    def interrupted(*args: object) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 40:
            raise KeyboardInterrupt
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "rebuild_item", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.redact([source], in_place=True, tokens=FakeVault(), **small)
    assert source.read_bytes() == raw
    assert source.with_name(source.name + CHECKPOINT_SUFFIX).exists()
    monkeypatch.setattr(run_module, "rebuild_item", real)
    vault = FakeVault()
    resumed = store.redact([source], in_place=True, resume=True, tokens=vault, **small)
    assert resumed.code == 0, resumed.stderr
    assert 0 < vault.calls < 100  # from the checkpoint, not from the start
    assert source.read_bytes() == expected.read_bytes()
    assert "300 items scanned" in resumed.stderr
    assert "100 items changed" in resumed.stderr


def test_byte_ranges_tile_a_json_lines_file_whatever_the_cuts(tmp_path: Path) -> None:
    import itertools
    import random

    from redactor.backfill.scan import scan_jsonl_range

    rng = random.Random(24)
    lines = [
        rng.choice([b"\n", b"\r\n", b'{"a": 1}\n', b'{"b": "' + b"x" * rng.randrange(90) + b'"}\n'])
        for _ in range(200)
    ]
    raw = b"".join(lines) + b'{"end": true}'
    path = tmp_path / "t.jsonl"
    path.write_bytes(raw)
    items = sum(1 for line in raw.split(b"\n") if line.strip())
    for _ in range(20):
        cuts = sorted(
            {0, len(raw), *(rng.randrange(len(raw)) for _ in range(rng.randrange(1, 30)))}
        )
        at, counted = 0, 0
        for lo, hi in itertools.pairwise(cuts):
            scanned = scan_jsonl_range(DetectionOptions(), str(path), lo, hi, lo == 0)
            assert scanned.start == at
            # A range starts at a line start (or at the end of the file).
            assert scanned.start in (0, len(raw)) or raw[scanned.start - 1] == ord("\n")
            at = scanned.end
            counted += scanned.items
        assert at == len(raw)
        assert counted == items
