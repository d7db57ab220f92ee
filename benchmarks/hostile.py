"""Hostile bodies and slow clients against a real `redactor serve` on 127.0.0.1.

Each case gets a fresh server process (so its peak RSS, VmHWM, is that case's alone), an
upstream that accepts anything, and a poller that asks the admin listener's /healthz every
10 ms while the case runs: its p99 says whether the event loop stayed responsive. The script
stops by itself (each case is bounded by --case-timeout) and writes
benchmarks/results/hostile.json.

    python benchmarks/hostile.py            # every case, ~2 min
    python benchmarks/hostile.py --only json_1m_keys,form_500k_fields
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

sys.path.append(str(Path(__file__).resolve().parent))
import proxy_backends as harness  # the benchmark harness: processes, ports, readiness

HOST = harness.HOST
RESULTS = Path(__file__).resolve().parent / "results" / "hostile.json"
PAN = "4111 1111 1111 1111"
TARGET_S = 1.0
TARGET_RSS_MB = 300.0
TARGET_HEALTH_P99_MS = 50.0


# --- bodies ------------------------------------------------------------------------------------


def _long_json_string() -> tuple[bytes, str]:
    groups = " ".join(f"{i % 10000:04d}" for i in range(1_800_000))
    text = groups[: len(groups) // 2] + f" card: {PAN}. " + groups[len(groups) // 2 :]
    return json.dumps({"comment": text}).encode(), "application/json"


def _million_keys() -> tuple[bytes, str]:
    return (
        ("{" + ",".join(f'"{i:x}":0' for i in range(1_000_000)) + "}").encode(),
        "application/json",
    )


def _form_fields() -> tuple[bytes, str]:
    return "&".join(f"f{i}=1" for i in range(500_000)).encode(), "application/x-www-form-urlencoded"


def _html_refs() -> tuple[bytes, str]:
    return ("<p>" + "&#52;" * 1_000_000 + "</p>").encode(), "text/html"


def _html_inline_tags() -> tuple[bytes, str]:
    # Issue 18: 8.8 MB of tiny inline tags cost 14.7 s and 494 MB before the tag limit.
    return ("<p>" + "<b>1</b>" * 1_100_000 + "</p>").encode(), "text/html"


def _deep_json() -> tuple[bytes, str]:
    return b"[" * 4_000_000 + b"]" * 4_000_000, "application/json"


def _multipart_parts() -> tuple[bytes, str]:
    parts = [
        f'--b\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n' for i in range(150_000)
    ]
    return ("".join(parts) + "--b--\r\n").encode(), "multipart/form-data; boundary=b"


def _big_json_many_cards() -> tuple[bytes, str]:
    # A large but honest body: 20,000 comments, one card in every tenth.
    items = [
        {"id": i, "body": f"order {i} shipped" + (f", card {PAN}" if i % 10 == 0 else "")}
        for i in range(20_000)
    ]
    return json.dumps({"comments": items}).encode(), "application/json"


def _nested_documents() -> tuple[bytes, str]:
    doc: Any = {"v": f"card {PAN}"}
    # Each level escapes the one inside it again: 12 levels is already 60 KB.
    for _ in range(12):
        doc = {"d": json.dumps(doc)}
    return json.dumps(doc).encode(), "application/json"


def _prose_with_cards() -> tuple[bytes, str]:
    # A long e-mail thread as text: accepted and scanned, off the event loop.
    line = "Thanks for your reply, we will ship order 10877 on Monday at 10:30.\n"
    blocks = [line * 150 + f"card {PAN}\n" for _ in range(900)]
    return "".join(blocks).encode(), "text/plain"


BODIES: dict[str, Callable[[], tuple[bytes, str]]] = {
    "text_9mb_prose_900_cards": _prose_with_cards,
    "json_9mb_string_of_digit_groups": _long_json_string,
    "json_1m_keys": _million_keys,
    "form_500k_fields": _form_fields,
    "html_1m_char_refs": _html_refs,
    "html_1m_inline_tags": _html_inline_tags,
    "json_4m_deep": _deep_json,
    "multipart_150k_parts": _multipart_parts,
    "json_2mb_2000_cards": _big_json_many_cards,
    "json_documents_nested_12_deep": _nested_documents,
}


# --- a case ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    case: str
    body_mb: float
    status: str
    seconds: float
    peak_rss_mb: float
    workers_peak_rss_mb: float
    start_rss_mb: float
    health_p99_ms: float
    health_max_ms: float
    health_samples: int
    within_target: bool


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found.append(int(child))
                found.extend(_descendants(int(child)))
    return found


def _status_kib(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _peak_mb(pid: int) -> tuple[float, float]:
    """(peak RSS of the server process, sum of the peaks of its scan workers)."""
    workers = sum(_status_kib(child, "VmHWM") for child in _descendants(pid))
    return _status_kib(pid, "VmHWM") / 1024, workers / 1024


async def _poll_health(url: str, stop: asyncio.Event, samples: list[float]) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        while not stop.is_set():
            started = time.perf_counter()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url) as resp:
                    await resp.read()
            samples.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.005)


def _p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]


async def _send_body(url: str, body: bytes, content_type: str, encoding: str | None) -> str:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
        session.post(url + "/hook", data=body, headers=headers) as resp,
    ):
        payload = await resp.read()
        code = ""
        if resp.status >= 400:
            with contextlib.suppress(ValueError):
                code = " " + json.loads(payload).get("error", "")
        return f"{resp.status}{code}"


async def _trickle(url: str, head: bytes, then: bytes, interval_s: float, limit_s: float) -> str:
    """Send `head` one byte per interval, then `then` the same way; report how it ended."""
    host, port = url.split("//")[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    deadline = time.monotonic() + limit_s
    try:
        for byte in head + then:
            if time.monotonic() > deadline:
                return "still open at the limit"
            writer.write(bytes([byte]))
            await writer.drain()
            if reader.at_eof():
                break
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(reader.read(200), timeout=interval_s)
                if data:
                    return data.split(b"\r\n", 1)[0].decode()
                return "closed"
    except (ConnectionError, OSError):
        return "closed (reset)"
    else:
        return "closed"
    finally:
        writer.close()


async def _send_repeatedly(url: str, body: bytes, content_type: str, repeats: int) -> str:
    # Several sends in a row: enough /healthz samples while bodies are in flight for a p99.
    statuses = [await _send_body(url, body, content_type, None) for _ in range(repeats)]
    return statuses[0] if len(set(statuses)) == 1 else " / ".join(statuses)


async def run_case(name: str, workdir: Path, case_timeout_s: float, repeats: int) -> Result:
    up = harness._spawn_helper("upstream", harness._free_port())
    try:
        (workdir / name).mkdir(parents=True)
        server = harness._spawn_redactor(workdir / name, f"http://{HOST}:{up.port}", None)
    except BaseException:
        up.stop()
        raise
    base = f"http://{HOST}:{server.port}"
    health = f"http://{HOST}:{server.admin_port}/healthz"
    body_mb = 0.0
    try:
        await harness._wait_ready(up, f"http://{HOST}:{up.port}/")
        await harness._wait_ready(server, health)
        start_rss = server.status_kib("VmRSS") / 1024
        action: Awaitable[str]
        if name == "slow_headers":
            action = _trickle(
                base,
                b"POST /hook HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 500,
                b"",
                0.2,
                case_timeout_s,
            )
        elif name == "slow_body":
            head = b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n"
            action = _send_trickled_body(base, head, b"x" * 5000, 0.2, case_timeout_s)
        elif name == "gzip_bomb":
            body = gzip.compress(b"0" * 200_000_000, compresslevel=9)
            body_mb = len(body) / 1e6
            action = _send_body(base, body, "text/plain", "gzip")
        else:
            body, content_type = BODIES[name]()
            body_mb = len(body) / 1e6
            action = _send_repeatedly(base, body, content_type, repeats)
        samples: list[float] = []
        stop = asyncio.Event()
        poller = asyncio.create_task(_poll_health(health, stop, samples))
        await asyncio.sleep(0.2)  # a few samples before the case starts
        started = time.perf_counter()
        try:
            status = await asyncio.wait_for(action, timeout=case_timeout_s)
        except TimeoutError:
            status = "case timed out"
        seconds = time.perf_counter() - started
        if not name.startswith("slow_") and name != "gzip_bomb":
            seconds /= repeats
        await asyncio.sleep(0.1)
        stop.set()
        await poller
        peak, workers_peak = _peak_mb(server.pid)
    finally:
        server.stop()
        up.stop()
    refused = status[:1] == "4" or status.startswith(("closed", "HTTP/1.1 4"))
    slow_case = name.startswith("slow_")
    # /healthz: p99 of the samples; time: per send; RSS: the process's peak over the case.
    within = (
        peak < TARGET_RSS_MB
        and _p99(samples) < TARGET_HEALTH_P99_MS
        and (refused if slow_case else (refused or seconds < TARGET_S))
    )
    return Result(
        name,
        round(body_mb, 2),
        status,
        round(seconds, 3),
        round(peak, 1),
        round(workers_peak, 1),
        round(start_rss, 1),
        round(_p99(samples), 1),
        round(max(samples, default=float("nan")), 1),
        len(samples),
        within,
    )


async def _send_trickled_body(
    url: str, head: bytes, body: bytes, interval_s: float, limit_s: float
) -> str:
    host, port = url.split("//")[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head)
    await writer.drain()
    deadline = time.monotonic() + limit_s
    try:
        for byte in body:
            if time.monotonic() > deadline:
                return "still open at the limit"
            writer.write(bytes([byte]))
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(reader.read(200), timeout=interval_s)
                return data.split(b"\r\n", 1)[0].decode() if data else "closed"
    except (ConnectionError, OSError):
        return "closed (reset)"
    else:
        return "body completed"
    finally:
        writer.close()


CASES = [*BODIES, "gzip_bomb", "slow_headers", "slow_body"]


async def main_async(args: argparse.Namespace) -> list[Result]:
    cases = args.only.split(",") if args.only else CASES
    results = []
    with tempfile.TemporaryDirectory(prefix="redactor-hostile-") as tmp:
        for name in cases:
            result = await run_case(name, Path(tmp), args.case_timeout, args.repeats)
            print(
                f"{result.case:34} {result.body_mb:6.2f} MB  {result.status:28} "
                f"{result.seconds:7.3f} s  peak {result.peak_rss_mb:6.1f} MB "
                f"+ worker {result.workers_peak_rss_mb:5.1f} MB "
                f"(start {result.start_rss_mb:5.1f})  /healthz p99 {result.health_p99_ms:6.1f} ms "
                f"max {result.health_max_ms:6.1f}  {'ok' if result.within_target else 'MISSED'}",
                flush=True,
            )
            results.append(result)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", help="comma-separated case names")
    p.add_argument("--case-timeout", type=float, default=30.0)
    p.add_argument("--repeats", type=int, default=5, help="sends per body case (time is per send)")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    results = asyncio.run(main_async(args))
    if not args.no_write and not args.only:
        RESULTS.write_text(
            json.dumps(
                {
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": {
                        "python": platform.python_version(),
                        "cpus": __import__("os").cpu_count(),
                    },
                    "targets": {
                        "seconds": TARGET_S,
                        "peak_rss_mb": TARGET_RSS_MB,
                        "health_p99_ms": TARGET_HEALTH_P99_MS,
                    },
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
