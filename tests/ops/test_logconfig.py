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
