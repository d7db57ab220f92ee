"""Memory of a running server: PSS and RSS of the supervisor and every worker (issue 14).

Starts `redactor serve --dev --workers N` on 127.0.0.1 for each N asked, waits until it answers
/healthz, sends a bounded number of webhooks holding test card numbers (so every worker has
built its pipeline, opened the vault and tokenised), then reads /proc/PID/smaps_rollup for the
server and all its descendants. PSS (proportional set size) counts a page shared by k processes
as 1/k in each, so the sum over the processes is what the server really costs the machine;
RSS counts shared pages in every process.

    python benchmarks/memory.py                    # workers 1 and 2; writes results/memory.json
    python benchmarks/memory.py --workers 2 --requests 400

Output holds figures only, never a value.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.proxy_backends import HOST, _card, _free_ports

_ROOT = Path(__file__).resolve().parent.parent
RESULTS = _ROOT / "benchmarks" / "results" / "memory.json"
START_TIMEOUT_S = 60.0


def _descendants(pid: int) -> list[int]:
    found = [pid]
    for child_pid in _children(pid):
        found.extend(_descendants(child_pid))
    return found


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _kib(path: Path, key: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _wait_healthy(admin_port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited during start")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{admin_port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not become healthy in time")


def _send_webhooks(port: int, count: int, rng: random.Random) -> int:
    # Forwarding fails (nothing listens upstream): the body is still parsed, detected and
    # tokenised before the 502, which is the memory this measures.
    sent = 0
    for _ in range(count):
        body = json.dumps({"ticket": {"comment": f"my card is {_card(rng, 0)} thanks"}}).encode()
        req = urllib.request.Request(
            f"http://{HOST}:{port}/tickets",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5):  # noqa: S310 - loopback
                pass
        except urllib.error.HTTPError:
            pass
        sent += 1
    return sent


def measure(workers: int, requests: int) -> dict[str, object]:
    """Start a server with `workers` workers, load it, and read its memory."""
    data_dir = Path(tempfile.mkdtemp(prefix="redactor-mem-"))
    port, admin_port, upstream_port = _free_ports(3)
    cmd = [
        sys.executable, "-m", "redactor", "serve", "--dev", "--workers", str(workers),
        "--listen", f"{HOST}:{port}", "--admin-listen", f"{HOST}:{admin_port}",
        "--upstream", f"http://{HOST}:{upstream_port}", "--data-dir", str(data_dir),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(admin_port, proc)
        # Every worker must have started before its memory counts.
        deadline = time.monotonic() + START_TIMEOUT_S
        while workers > 1 and len(_children(proc.pid)) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start in time")
            time.sleep(0.2)
        _send_webhooks(port, requests, random.Random(workers))
        time.sleep(0.5)
        processes = []
        for pid in _descendants(proc.pid):
            status = Path(f"/proc/{pid}/status")
            processes.append(
                {
                    "pid": pid,
                    "role": "supervisor" if pid == proc.pid and workers > 1 else "worker",
                    "pss_kib": _kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss"),
                    "rss_kib": _kib(status, "VmRSS"),
                }
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "workers": workers,
        "requests": requests,
        "processes": processes,
        "total_pss_mib": round(sum(p["pss_kib"] for p in processes) / 1024, 1),
        "total_rss_mib": round(sum(p["rss_kib"] for p in processes) / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--requests", type=int, default=200, help="webhooks sent before reading")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    runs = [measure(int(n), args.requests) for n in args.workers.split(",")]
    print(
        f"{'workers':>7} {'processes':>9} {'PSS MiB':>8} {'RSS MiB':>8}   per process (PSS/RSS MiB)"
    )
    for run in runs:
        per = ", ".join(
            f"{p['role']} {p['pss_kib'] / 1024:.0f}/{p['rss_kib'] / 1024:.0f}"
            for p in run["processes"]  # type: ignore[attr-defined]
        )
        print(
            f"{run['workers']:>7} {len(run['processes']):>9} "  # type: ignore[arg-type]
            f"{run['total_pss_mib']:>8} {run['total_rss_mib']:>8}   {per}"
        )
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": platform.machine(),
                    "cpus": os.cpu_count(),
                    "load_average": os.getloadavg(),
                    "runs": runs,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {RESULTS.relative_to(_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
