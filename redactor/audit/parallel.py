"""Verifying a large trail on several cores.

Each line's MAC covers the previous line's *stored* MAC, so a file splits at line boundaries
into segments that verify independently: a worker checks every line of its segment against
the line before it in the same chain, and hands back, per chain, the segment's first line
(unverified: its predecessor is in another segment) and last MAC. The caller stitches the
segments in order. Any doubt (a line that does not verify, an odd line, a gap) returns None:
the caller then walks the trail sequentially, which names the break.

Runs in worker processes (fork): call it from a command, never from inside a server.
"""

from __future__ import annotations

import hmac
import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from redactor.audit.chain import GENESIS_MAC, MAC_PREFIX, MAC_TAIL_BYTES

_CHAIN_HEAD = b'{"chain":"'
_SEQ_KEY = b',"seq":'
_FINAL_CHECKPOINT = (b'"audit_checkpoint"', b'"final":true')

# Per chain, in order of first appearance in the segment:
# (chain id, first seq, first mac, first canonical record, last seq, last mac, lines, closed)
ChainSpan = tuple[str, int, bytes, bytes, int, bytes, int, bool]


def split_points(path: Path, parts: int) -> list[tuple[int, int]]:
    """Byte ranges of `path`, about equal, each ending just after a newline (the last at EOF)."""
    size = path.stat().st_size
    if size == 0:
        return []
    cuts = [0]
    with path.open("rb") as handle:
        for n in range(1, parts):
            handle.seek(max(size * n // parts, cuts[-1]))
            handle.readline()  # to the end of the line the guess fell in
            at = handle.tell()
            if at >= size:
                break
            if at > cuts[-1]:
                cuts.append(at)
    cuts.append(size)
    return list(itertools.pairwise(cuts))


def check_segment(path: str, start: int, end: int, key: bytes) -> list[ChainSpan] | None:
    """The chain spans of one segment, or None if any line in it is not a verifying link."""
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    spans: dict[bytes, _Span] = {}
    digest = hmac.digest
    for raw in data.split(b"\n"):
        if not raw:
            continue
        cut = len(raw) - MAC_TAIL_BYTES
        if not raw.startswith(_CHAIN_HEAD) or cut <= 0 or raw[cut : cut + 8] != MAC_PREFIX:
            return None
        chain = raw[10 : raw.find(b'"', 10)]
        body = raw[:cut] + b"}"
        stored = raw[cut + 8 : -2]
        closed = all(marker in raw for marker in _FINAL_CHECKPOINT)
        span = spans.get(chain)
        if span is None:
            at = raw.find(_SEQ_KEY)
            if at < 0:
                return None
            try:
                seq = int(raw[at + 7 : raw.find(b",", at + 7)])
                mac = bytes.fromhex(stored.decode("ascii"))
            except ValueError:
                return None
            spans[chain] = _Span(seq, mac, body, seq, mac, 1, closed)
            continue
        if b',"seq":%d,' % (span.last_seq + 1) not in raw:
            return None
        mac = digest(key, span.last_mac + body, "sha256")
        if mac.hex().encode() != stored:
            return None
        span.last_seq += 1
        span.last_mac = mac
        span.lines += 1
        span.closed = closed
    return [s.summary(c.decode("ascii", "replace")) for c, s in spans.items()]


@dataclass(slots=True)
class _Span:
    first_seq: int
    first_mac: bytes
    first_body: bytes
    last_seq: int
    last_mac: bytes
    lines: int
    closed: bool

    def summary(self, chain: str) -> ChainSpan:
        return (
            chain,
            self.first_seq,
            self.first_mac,
            self.first_body,
            self.last_seq,
            self.last_mac,
            self.lines,
            self.closed,
        )


def _check(args: tuple[str, int, int, bytes]) -> list[ChainSpan] | None:
    return check_segment(*args)


def verify_spans(
    key: bytes, logs: Sequence[Path], jobs: int
) -> dict[str, tuple[int, int, int, bytes, bool]] | None:
    """Per chain (records, first seq, last seq, last MAC, closed) when every line of every file
    verifies and every chain starts at seq 0 with no gap; otherwise None."""
    tasks = [
        (str(path), start, end, key) for path in logs for start, end in split_points(path, jobs * 2)
    ]
    workers = max(1, min(jobs, len(tasks), os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_check, tasks, chunksize=1))
    state: dict[str, tuple[int, int, int, bytes, bool]] = {}
    for spans in results:
        if spans is None:
            return None
        for chain, first_seq, first_mac, first_body, last_seq, last_mac, lines, closed in spans:
            known = state.get(chain)
            records, start, expected, prev = (
                (0, 0, 0, GENESIS_MAC)
                if known is None
                else (known[0], known[1], known[2] + 1, known[3])
            )
            if first_seq != expected or not hmac.compare_digest(
                hmac.digest(key, prev + first_body, "sha256"), first_mac
            ):
                return None
            state[chain] = (records + lines, start, last_seq, last_mac, closed)
    return state
