"""The console's index worker: a process of its own that keeps the trail's index up to date and
answers the console's queries from it, so none of that work runs on the server's event loop
or holds its interpreter (a 1,000,000-record build is seconds of CPU).

Started by the console (`redactor.ops.console_index`) with `python -m redactor.ops.index_worker`;
it reads framed requests on stdin and answers on stdout (a frame: its length in ASCII digits,
a newline, then the bytes). The first frame is the set-up: the audit key (hex; never in argv,
never logged) and the trail's path. It exits when stdin closes (its server is gone).

Each request first reads what was appended to the trail; at most every
`FULL_CHECK_MAX_AGE_S` (and when idle) every indexed byte is re-hashed, so a trail edited under
the index is never shown as verified for longer than that. It runs at the lowest CPU priority
(SCHED_IDLE on Linux: a waking server thread preempts it at once).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redactor.audit.index import FULL_CHECK_MAX_AGE_S, TrailIndex, index_path_for, trail_files
from redactor.audit.index_views import (
    FILTERS,
    PAGE_DEFAULT,
    PAGE_MAX,
    Query,
    QueryError,
    export,
    panel_page,
    summary,
    zone,
)
from redactor.audit.integrity import TrailIntegrity
from redactor.audit.registry import Completeness, check_completeness, registry_from_message
from redactor.audit.report import parse_time

IDLE_CHECK_S = FULL_CHECK_MAX_AGE_S / 2
DEFAULT_DAYS = 7


class _Frames:
    """Length-prefixed frames on a raw file descriptor (select-friendly: no hidden buffer)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def _fill(self) -> bool:
        data = os.read(self.fd, 1 << 16)
        self.buffer += data
        return bool(data)

    def read(self) -> bytes | None:
        while b"\n" not in self.buffer:
            if not self._fill():
                return None
        size_text, self.buffer = self.buffer.split(b"\n", 1)
        size = int(size_text)
        while len(self.buffer) < size:
            if not self._fill():
                return None
        frame, self.buffer = self.buffer[:size], self.buffer[size:]
        return frame


def write_frame(out: Any, data: bytes) -> None:
    """One frame to a binary stream."""
    out.write(b"%d\n" % len(data) + data)
    out.flush()


def build_query(tenant: str, params: dict[str, str], now: datetime) -> Query:
    """The query a console request asks. Raises QueryError."""
    try:
        until = parse_time(params["until"]) if params.get("until") else now
        since = (
            parse_time(params["since"])
            if params.get("since")
            else until - timedelta(days=DEFAULT_DAYS)
        )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or PAGE_DEFAULT)
    except ValueError as exc:
        raise QueryError("since and until must be ISO times; offset and limit numbers") from exc
    if since >= until:
        raise QueryError("since must be before until")
    if offset < 0 or not 1 <= limit <= PAGE_MAX:
        raise QueryError(f"offset must be 0 or more, limit 1 to {PAGE_MAX}")
    order = params.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise QueryError("order is asc or desc")
    return Query(
        tenant=tenant,
        since=since,
        until=until,
        zone=zone(params.get("tz")),
        filters={f: params[f] for f in FILTERS if params.get(f)},
        sort=params.get("sort") or "time",
        descending=order == "desc",
        offset=offset,
        limit=limit,
    )


class Worker:
    """The index and what answers from it."""

    def __init__(self, key: bytes, audit_log: Path) -> None:
        self.audit_log = audit_log
        self.index = TrailIndex(index_path_for(audit_log), key)

    def refresh(self) -> None:
        """Read what was appended; re-hash every indexed byte when that is due."""
        logs = trail_files(self.audit_log)
        self.index.update(logs)
        if time.monotonic() - self.index.full_checked_at > FULL_CHECK_MAX_AGE_S:
            self.index.full_check(logs)

    def integrity(self, now: datetime, registry: dict[str, Any] | None = None) -> TrailIntegrity:
        """What verify says of the indexed trail now, held against the chain registry the
        console read from the vault (`registry_message`; None: not compared)."""
        logs = trail_files(self.audit_log)
        result = self.index.integrity_result(logs)
        chains = registry_from_message(registry)
        if chains is None or isinstance(chains, Completeness):
            return TrailIntegrity(result, now, chains)
        completeness = check_completeness(result, chains, logs, whole_directories=False)
        return TrailIntegrity(result, now, completeness)

    def answer(self, request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """(meta, body) for one request."""
        now = datetime.now(UTC)
        self.refresh()
        integrity = self.integrity(now, request.get("registry"))
        checked = integrity.to_json()
        query = build_query(str(request["tenant"]), dict(request.get("params") or {}), now)
        op = request.get("op")
        if op == "summary":
            body = json.dumps(summary(self.index, query, checked)).encode()
            return {"ok": True, "content_type": "application/json"}, body
        name = str(request.get("panel"))
        fmt = request.get("format")
        if fmt in ("csv", "json"):
            text = export(self.index, name, query, fmt, integrity.headline())
            kind = "text/csv" if fmt == "csv" else "application/json"
            return {"ok": True, "content_type": kind, "integrity_ok": integrity.ok}, text.encode()
        page = {"integrity": checked, **panel_page(self.index, name, query)}
        return {"ok": True, "content_type": "application/json"}, json.dumps(page).encode()


def lower_priority() -> None:
    """The server's requests come first: the console waits, never the proxy. SCHED_IDLE (Linux)
    lets a waking server thread preempt the worker at once; elsewhere the lowest nice."""
    with contextlib.suppress(OSError):
        os.nice(19)
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, idle, os.sched_param(0))


def main() -> None:
    """Serve requests on stdin until it closes."""
    lower_priority()
    frames = _Frames(sys.stdin.fileno())
    out = sys.stdout.buffer
    setup_frame = frames.read()
    if setup_frame is None:
        return
    setup = json.loads(setup_frame)
    worker = Worker(bytes.fromhex(setup["key"]), Path(setup["audit_log"]))
    while True:
        ready, _, _ = (
            select.select([frames.fd], [], [], IDLE_CHECK_S) if not frames.buffer else ([1], [], [])
        )
        if not ready:
            try:
                worker.refresh()  # idle: keep up, and re-hash when due
            except Exception:  # noqa: BLE001 - reported with the next answer
                traceback.print_exc(file=sys.stderr)
            continue
        frame = frames.read()
        if frame is None:
            return
        try:
            meta, body = worker.answer(json.loads(frame))
        except QueryError as exc:
            meta, body = {"ok": False, "status": 400, "error": str(exc)}, b""
        except Exception:  # noqa: BLE001 - the console answers 503; the cause goes to stderr
            traceback.print_exc(file=sys.stderr)
            meta, body = {"ok": False, "status": 503, "error": "the audit index failed"}, b""
        write_frame(out, json.dumps(meta).encode())
        write_frame(out, body)


if __name__ == "__main__":
    main()
