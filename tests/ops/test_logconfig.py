"""The leak guard masks anything card- or SSN-shaped that reaches a log line."""

import io
import json

import structlog

from redactor.ops.logconfig import configure_logging


def test_leak_guard_masks_values_in_every_field_and_nested_structures() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        log = structlog.get_logger()
        log.info(
            "careless_event",
            note="card 4111 1111 1111 1111 given",
            nested={"ssn": ["536-90-4399"]},
            number=4111111111111111,
        )
    finally:
        structlog.reset_defaults()
    line = stream.getvalue()
    assert "4111" not in line
    assert "536-90" not in line
    event = json.loads(line)
    assert event["event"] == "careless_event"
    assert "[MASKED]" in event["note"]
    assert event["number"] == "[MASKED]"


def test_card_numbers_nested_as_numbers_or_keys_are_masked() -> None:
    import io

    import structlog

    from redactor.ops.logconfig import configure_logging

    stream = io.StringIO()
    configure_logging(stream=stream)
    structlog.get_logger().info(
        "odd_event", nested=[4111111111111111], by={"4111 1111 1111 1111": 1}, small=[42]
    )
    line = stream.getvalue()
    assert "4111" not in line
    assert "42" in line


def test_ids_pass_whole_while_card_and_ssn_shapes_are_still_masked() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    ids = [
        "82f1234567890b3f732aabc538457aaa",  # a UUID hex with a 10-digit run
        "0d9c3a52-1b34-4567-8123-45a789012345",
        "tok_v1_card_cjzztgugpllwwearzjyy_1111",
    ]
    try:
        log = structlog.get_logger()
        for value in ids:
            log.info("id_logged", request_id=value, other=value)
        log.info(
            "careless_event",
            uuid_shaped_pan="41111111111111114111111111111111",
            lettered="4111111111111111aaaaaaaaaaaaaaaa",
            note="ssn 536-90-4399 and 4111-1111-1111-1111",
        )
    finally:
        structlog.reset_defaults()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    for value, event in zip(ids, events, strict=False):
        assert event["request_id"] == value
        assert event["other"] == value
    careless = events[-1]
    assert "4111" not in json.dumps(careless)
    assert "536-90" not in json.dumps(careless)


def test_the_servers_cached_loggers_mask_values_too() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, cache=True)
    try:
        log = structlog.get_logger()
        for n in range(2):  # the second call goes through the logger cached by the first
            log.info("careless_event", note=f"card 4111 1111 1111 1111 try {n}")
            log.debug("filtered_out", note="ssn 536-90-4399")
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in lines] == ["careless_event", "careless_event"]
    assert "4111" not in stream.getvalue()
    assert "536-90" not in stream.getvalue()


def test_each_log_line_is_one_write_so_workers_sharing_stderr_never_interleave() -> None:
    class Recording(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

    stream = Recording()
    configure_logging(stream=stream, cache=True)
    try:
        log = structlog.get_logger()
        log.info("redactor_started", listen="127.0.0.1:8080")
        log.warning("second_line")
    finally:
        structlog.reset_defaults()
    assert len(stream.writes) == 2
    assert all(w.endswith("\n") and w.count("\n") == 1 for w in stream.writes)
    assert [json.loads(w)["event"] for w in stream.writes] == ["redactor_started", "second_line"]


def test_audit_chain_ids_and_rotated_file_names_pass_whole_digit_runs_around_them_do_not() -> None:
    from redactor.ops.logconfig import leak_guard

    chain = "3f9c412088751e2a"  # 16 hex digits with a letter, no 13-digit run
    rotated = "/var/log/redactor/audit-w2.20261129T231500.123456Z-000000000042.jsonl"
    event = leak_guard(None, "info", {"chain": chain, "rotated_to": rotated})
    assert event == {"chain": chain, "rotated_to": rotated}
    # A card number is not an id because it is hex-shaped, nor hidden by sitting next to a
    # file name: the parts around the stamp are masked as always.
    smuggled = {
        "chain": "4111111111111111",
        "path": "/logs/4111 1111 1111 1111/audit.20261129T231500.123456Z-000000000042.jsonl",
        "near": "536-90-4399 audit.20261129T231500.123456Z-000000000042.jsonl",
    }
    masked = leak_guard(None, "info", dict(smuggled))
    assert masked["chain"] == "[MASKED]"
    assert masked["path"] == "/logs/[MASKED]/audit.20261129T231500.123456Z-000000000042.jsonl"
    assert masked["near"].startswith("[MASKED] audit.20261129T231500")
    for value in masked.values():
        assert "4111" not in value
        assert "536-90" not in value
