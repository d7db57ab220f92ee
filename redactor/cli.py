"""The `redactor` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from redactor import __version__


def _cmd_detect(args: argparse.Namespace) -> int:
    from redactor.detect_cli import run_detect
    from redactor.detection import DetectionOptions, Detector

    options = DetectionOptions(
        ignore_dummy_ssns=args.ignore_dummy_ssns,
        bare_ssn_needs_context=args.bare_ssn_needs_context,
    )
    return run_detect(sys.stdin, sys.stdout, sys.stderr, Detector(options))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="redactor",
        description=(
            "Redaction proxy for support channels: finds payment card numbers and US SSNs "
            "in webhook and e-mail bodies and replaces them with vault tokens."
        ),
    )
    parser.add_argument("--version", action="version", version=f"redactor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    detect = sub.add_parser(
        "detect",
        help="find card numbers and SSNs in JSON lines read from stdin",
        description=(
            'Reads JSON lines {"id": ..., "text": ...} on stdin and writes one line per input: '
            '{"id": ..., "entities": [{"entity", "start", "end", "score"}]}, offsets being '
            "Python string offsets into text. A malformed line gets an error line on stderr "
            "(never its text) and the exit code is 1 at the end; the other lines go on."
        ),
    )
    detect.add_argument(
        "--ignore-dummy-ssns",
        action="store_true",
        help="do not report well-known sample SSNs such as 078-05-1120",
    )
    detect.add_argument(
        "--bare-ssn-needs-context",
        action="store_true",
        help="report a 9-digit number without separators only when an SSN word is nearby",
    )
    detect.set_defaults(handler=_cmd_detect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `redactor` console script."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
