"""CPU per request of redactor at several revisions, interleaved under the same wrk load.

`proxy.py` measures one tree against the bare proxy; on a shared machine its figures move by
10-25 % between runs, more than the changes worth measuring. This script runs `proxy.py`'s
protocol (one redactor process pinned to core 0, `wrk` with 16 connections and the upstream on
core 1, uvloop, the same three bodies) for each given tree in turn, round after round, so each
round compares the trees under the same load. CPU per request is read from /proc for the server
and its children (the scan workers) and reported per process, with the context switches per
request (a sign of how much work each loop pass does) and the load average of the round.

    python benchmarks/proxy_ab.py --tree base=/tmp/base-031601d --tree main=. --rounds 3
    python benchmarks/proxy_ab.py --rev 031601d --rev HEAD --rounds 2 --bodies thread

`--rev` checks the revision out with `git worktree` into a temporary directory; `--tree
NAME=PATH` uses a checkout as it is. Results go to `--out` (none by default). Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.proxy import (
    _LUA,
    BODIES,
    HOST,
    LOAD_CORE,
    PROXY_CORE,
    Proc,
    _clean_env,
    _free_ports,
    _wait_ready,
    make_bodies,
    run_wrk,
    spawn_helper,
)

_ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")
# REDACTOR_* settings for every tree (--env); _clean_env drops the caller's own.
ENV: dict[str, str] = {}
# REDACTOR_* settings for one tree only (--tree-env NAME:REDACTOR_X=VALUE).
TREE_ENV: dict[str, dict[str, str]] = {}
CONNECTIONS = [16]


def _procs(pid: int) -> dict[int, str]:
    """The server and its live children, each with its command name."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    return {p: Path(f"/proc/{p}/comm").read_text().strip() for p in pids}


def _sample(pid: int) -> dict[int, tuple[float, int]]:
    """CPU seconds and context switches (voluntary + not) of the server and its children."""
    out: dict[int, tuple[float, int]] = {}
    for p in _procs(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:
            continue
        switches = sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
        )
        out[p] = ((int(fields[11]) + int(fields[12])) / _TICK, switches)
    return out


def spawn_tree(
    tree: Path,
    workdir: Path,
    upstream: str,
    extra: list[str],
    env_extra: dict[str, str] | None = None,
) -> Proc:
    """`redactor serve --dev` of `tree` (its own package first on the path), pinned."""
    port, admin = _free_ports(2)
    argv = [
        "taskset", "-c", PROXY_CORE, sys.executable, "-m", "redactor", "serve", "--dev",
        "--listen", f"{HOST}:{port}", "--admin-listen", f"{HOST}:{admin}",
        "--upstream", upstream, "--data-dir", str(workdir / "data"),
        "--audit-log", str(workdir / "audit.jsonl"), "--workers", "1", *extra,
    ]  # fmt: skip
    env = _clean_env() | {
        "REDACTOR_EVENT_LOOP": "uvloop",
        "PYTHONPATH": str(tree),
        **ENV,
        **(env_extra or {}),
    }
    log_path = workdir / "redactor.log"
    with log_path.open("wb") as err:
        popen = subprocess.Popen(
            argv, cwd=tree, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip
    return Proc("redactor", popen, port, log_path, admin)


async def measure_tree(
    name: str, tree: Path, work: Path, upstream: str, files: dict[str, Path], lua: Path,
    bodies: list[str], seconds: float, extra: list[str],
) -> dict[str, Any]:  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    proc = spawn_tree(tree, workdir, upstream, extra, TREE_ENV.get(name))
    out: dict[str, Any] = {}
    try:
        await _wait_ready(proc, f"http://{HOST}:{proc.admin_port}/readyz", timeout_s=90)
        url = f"http://{HOST}:{proc.port}/hook"
        for kind in bodies:
            run_wrk(url, files[kind], lua, 1.5, CONNECTIONS[0])
            before = _sample(proc.pid)
            res = run_wrk(url, files[kind], lua, seconds, CONNECTIONS[0])
            after = _sample(proc.pid)
            n = max(1, res.requests)
            per_proc = {
                ("server" if p == proc.pid else f"child{p}"): round(
                    (after[p][0] - before.get(p, (0.0, 0))[0]) * 1000 / n, 4
                )
                for p in after
            }
            cpu = sum(per_proc.values())
            switches = sum(after[p][1] - before.get(p, (0.0, 0))[1] for p in after) / n
            out[kind] = {
                "cpu_ms_per_request": round(cpu, 4),
                "cpu_ms_by_process": per_proc,
                "switches_per_request": round(switches, 3),
                "rps": round(res.rps, 1),
                "errors": res.non_2xx + res.socket_errors,
            }
            print(
                f"  {name:<10} {kind:<10} cpu {cpu:6.3f} ms/req  {res.rps:7.0f} req/s  "
                f"switches {switches:5.2f}/req  "
                + " ".join(f"{k}={v:.3f}" for k, v in per_proc.items()),
                flush=True,
            )
    finally:
        proc.stop()
    return out


def _trees(args: argparse.Namespace, tmp: Path) -> dict[str, Path]:
    trees: dict[str, Path] = {}
    for spec in args.tree or []:
        name, _, path = spec.partition("=")
        trees[name] = Path(path).resolve()
    for rev in args.rev or []:
        dest = tmp / f"rev-{rev}"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(dest), rev], cwd=_ROOT, check=True,
            capture_output=True,
        )  # fmt: skip
        trees[rev] = dest
    return trees


async def run(args: argparse.Namespace, work: Path, trees: dict[str, Path]) -> dict[str, Any]:
    bodies = args.bodies.split(",") if args.bodies else list(BODIES)
    lua = work / "bodies.lua"
    lua.write_text(_LUA)
    files: dict[str, Path] = {}
    for kind in bodies:
        count = 60_000 if kind == "chat-card" else 2_000
        files[kind] = work / f"{kind}.lines"
        files[kind].write_bytes(b"\n".join(make_bodies(kind, count, 14)) + b"\n")
    (up_port,) = _free_ports(1)
    up = spawn_helper("upstream", up_port, "uvloop", LOAD_CORE)
    upstream = f"http://{HOST}:{up_port}"
    rounds: list[dict[str, Any]] = []
    try:
        await _wait_ready(up, upstream + "/")
        for r in range(args.rounds):
            load = os.getloadavg()[0]
            print(f"round {r + 1}: load average {load:.2f}", flush=True)
            row: dict[str, Any] = {"load_average": round(load, 2), "trees": {}}
            order = list(trees.items())
            if r % 2:
                order.reverse()  # each tree goes first as often as last
            for name, tree in order:
                row["trees"][name] = await measure_tree(
                    name, tree, work, upstream, files, lua, bodies, args.seconds, args.serve_arg
                )
            rounds.append(row)
    finally:
        up.stop()
    summary = {
        name: {
            kind: round(
                statistics.median(r["trees"][name][kind]["cpu_ms_per_request"] for r in rounds), 4
            )
            for kind in bodies
        }
        for name in trees
    }
    print("median CPU ms per request:")
    for name, row in summary.items():
        print(f"  {name:<10} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    return {"rounds": rounds, "median_cpu_ms_per_request": summary}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", action="append", help="NAME=PATH of a checkout")
    p.add_argument("--rev", action="append", help="a git revision, checked out for the run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--bodies", help="comma-separated: " + ",".join(BODIES))
    p.add_argument("--serve-arg", action="append", default=[], help="extra flag for serve")
    p.add_argument("--env", action="append", default=[], help="REDACTOR_X=VALUE for serve")
    p.add_argument(
        "--tree-env", action="append", default=[], help="NAME:REDACTOR_X=VALUE for one tree"
    )
    p.add_argument("--connections", type=int, default=16, help="wrk's connections (16)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if not (args.tree or args.rev):
        p.error("give --tree or --rev")
    ENV.update(item.split("=", 1) for item in args.env)
    for item in args.tree_env:
        name, _, setting = item.partition(":")
        key, _, value = setting.partition("=")
        TREE_ENV.setdefault(name, {})[key] = value
    CONNECTIONS[0] = args.connections
    with tempfile.TemporaryDirectory(prefix="proxy-ab-") as tmp:
        work = Path(tmp)
        trees = _trees(args, work)
        try:
            result = asyncio.run(run(args, work, trees))
        finally:
            for rev in args.rev or []:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(trees[rev])], cwd=_ROOT,
                    capture_output=True,
                )  # fmt: skip
    result |= {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "trees": {name: str(path) for name, path in trees.items()},
        "seconds": args.seconds,
        "protocol": "proxy.py's: 1 server pinned to core 0, wrk -c16 and upstream on core 1",
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
