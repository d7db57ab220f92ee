"""A chain's walk (`verify`'s per-chain state) as JSON, so an index update can go on where
the last one stopped: MACs and bodies in hex, nothing else transformed."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from redactor.audit.verify import Break, ChainReport, _Line, _Walk


def walk_to_json(walk: _Walk) -> dict[str, Any]:
    report = walk.report
    suspect = walk.suspect
    return {
        "report": {
            "chain_id": report.chain_id,
            "records": report.records,
            "first_seq": report.first_seq,
            "last_seq": report.last_seq,
            "closed": report.closed,
            "checkpoint_seq": report.checkpoint_seq,
            "broken": asdict(report.broken) if report.broken else None,
        },
        "next_seq": walk.next_seq,
        "prev_mac": walk.prev_mac.hex(),
        "suspect": None
        if suspect is None
        else {
            "seq": suspect.seq,
            "mac": suspect.mac.hex(),
            "body": suspect.body.hex(),
            "file": suspect.file,
            "line": suspect.line,
        },
        "suspect_prev": walk.suspect_prev.hex(),
        "missing_seq": walk.missing_seq,
        "missing_at": list(walk.missing_at),
        "seen_after": walk.seen_after,
        "kid": walk.kid,
    }


def walk_from_json(data: dict[str, Any]) -> _Walk:
    r = data["report"]
    report = ChainReport(
        r["chain_id"],
        r["records"],
        r["first_seq"],
        r["last_seq"],
        r["closed"],
        Break(**r["broken"]) if r["broken"] else None,
        r["checkpoint_seq"],
    )
    s = data["suspect"]
    return _Walk(
        report,
        next_seq=data["next_seq"],
        prev_mac=bytes.fromhex(data["prev_mac"]),
        suspect=None
        if s is None
        else _Line(
            s["seq"], bytes.fromhex(s["mac"]), bytes.fromhex(s["body"]), s["file"], s["line"]
        ),
        suspect_prev=bytes.fromhex(data["suspect_prev"]),
        missing_seq=data["missing_seq"],
        missing_at=(data["missing_at"][0], data["missing_at"][1]),
        seen_after=data["seen_after"],
        kid=data["kid"],
    )
