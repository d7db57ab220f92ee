"""CLI start-up: wall time, CPU time and peak RSS of one `redactor` command, per command (issue 19).

Each command runs 5 times (`--runs`) as `python -m redactor ...` in a fresh process; the table
gives the median wall time, the median CPU time (user + system, what a container HEALTHCHECK
costs the machine) and the largest peak RSS (`ru_maxrss` from wait4) over the runs. `health`
runs twice: against a port nothing listens on, and against `/readyz` of a live
`redactor serve --dev` started by this script (its start is not measured).

    python benchmarks/cli_startup.py                 # table + benchmarks/results/cli_startup.json
    python benchmarks/cli_startup.py --runs 9
    python benchmarks/cli_startup.py --root /tmp/old --no-write   # another checkout ("before")
    python benchmarks/cli_startup.py --command /tmp/venv/bin/redactor --no-write  # an installed
        # console script instead of `python -m redactor` (what the image's HEALTHCHECK runs)

Output holds figures only; `detect` reads one line holding no card number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
RESULTS = _ROOT / "benchmarks" / "results" / "cli_startup.json"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
DETECT_LINE = b'{"id": 1, "text": "order 12345 shipped on 2026-11-25"}\n'


def _free_ports(n: int) -> list[int]:
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]


def run_once(
    command: list[str], argv: list[str], env: dict[str, str], cwd: Path, stdin: bytes
) -> dict[str, float]:
    """One run of COMMAND ARGV: wall and CPU seconds, peak RSS in MiB, exit code."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    if proc.stdin is not None:
        proc.stdin.write(stdin)
        proc.stdin.close()
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix all children).
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mib": usage.ru_maxrss / 1024,
        "exit_code": proc.returncode,
    }


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited during start")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not become ready in time")


def measure(root: Path, runs: int, command: list[str]) -> list[dict[str, object]]:
    """Every command, `runs` times each, against the checkout at `root`."""
    work = Path(tempfile.mkdtemp(prefix="redactor-cli-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    env["PYTHONPATH"] = str(root)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    stopped, port, admin, upstream = _free_ports(4)
    serve = [
        sys.executable, "-m", "redactor", "serve", "--dev",
        "--listen", f"{HOST}:{port}", "--admin-listen", f"{HOST}:{admin}",
        "--upstream", f"http://{HOST}:{upstream}", "--data-dir", str(work / "data"),
    ]  # fmt: skip
    server = subprocess.Popen(
        serve,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=work,
    )
    ready = f"http://{HOST}:{admin}/readyz"
    commands: list[tuple[str, list[str], bytes]] = [
        ("--version", ["--version"], b""),
        ("health (stopped port)", ["health", "--url", f"http://{HOST}:{stopped}/readyz"], b""),
        ("health (live /readyz)", ["health", "--url", ready], b""),
        ("detect (one line)", ["detect"], DETECT_LINE),
        ("serve --help", ["serve", "--help"], b""),
        ("keys --help", ["keys", "--help"], b""),
        ("vault --help", ["vault", "--help"], b""),
        ("audit --help", ["audit", "--help"], b""),
    ]
    results = []
    try:
        _wait_ready(ready, server)
        # One untimed run first: the page cache holds the modules, as for a HEALTHCHECK.
        run_once(command, ["--version"], env, work, b"")
        for name, argv, stdin in commands:
            samples = [run_once(command, argv, env, work, stdin) for _ in range(runs)]
            results.append(
                {
                    "command": name,
                    "argv": argv,
                    "runs": runs,
                    "median_wall_s": round(statistics.median(s["wall_s"] for s in samples), 3),
                    "max_wall_s": round(max(s["wall_s"] for s in samples), 3),
                    "median_cpu_s": round(statistics.median(s["cpu_s"] for s in samples), 3),
                    "max_rss_mib": round(max(s["max_rss_mib"] for s in samples), 1),
                    "exit_codes": sorted({int(s["exit_code"]) for s in samples}),
                }
            )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)
    return results


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median)")
    parser.add_argument("--root", type=Path, default=_ROOT, help="checkout to run")
    parser.add_argument(
        "--command", help="the redactor executable to run (default: python -m redactor)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    command = [args.command] if args.command else [sys.executable, "-m", "redactor"]
    results = measure(args.root.resolve(), args.runs, command)
    print(f"{'command':<24} {'wall s':>7} {'max s':>7} {'CPU s':>7} {'RSS MiB':>8}  exit")
    for r in results:
        print(
            f"{r['command']:<24} {r['median_wall_s']:>7.3f} {r['max_wall_s']:>7.3f} "
            f"{r['median_cpu_s']:>7.3f} {r['max_rss_mib']:>8.1f}  {r['exit_codes']}"
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
                    "python": platform.python_version(),
                    "commit": _git_commit(args.root),
                    "command": command,
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {RESULTS.relative_to(_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
