"""Proxy at its floor: redactor against a bare aiohttp pass-through, side by side (issue 14).

One run measures, on 127.0.0.1 with `wrk` as the load generator (16 connections):
- three Zendesk `ticket.comment_added` webhooks: (a) `chat`, a 300-character message with no
  value; (b) `chat-card`, the same with one new card number per request; (c) `thread`, a 20 KB
  e-mail thread with quoted history and signatures, no value;
- throughput and CPU per request of one redactor process and of the bare proxy, each pinned to
  the same core (`taskset`), with wrk and the upstream on the other core; both on the same
  event loop implementation (`--loop`);
- latency added at a fixed 200 requests/s (open loop from an aiohttp client, p50/p99 against
  the bare proxy at the same rate);
- `--workers 2` against `--workers 1` (unpinned: both cores) on every body.

    python benchmarks/proxy.py                 # ~2 minutes; writes results/proxy.json
    python benchmarks/proxy.py --quick         # ~40 seconds, rough figures
    python benchmarks/proxy.py --bodies chat --loop asyncio --no-write

The older issue-5 benchmark (SQLite and PostgreSQL vaults, 0/1/5 values, py-spy profiles) is
`benchmarks/proxy_backends.py`. Output holds figures only, never a value.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.proxy_backends import (
    HOST,
    Proc,
    _card,
    _clean_env,
    _free_ports,
    _machine,
    _wait_ready,
    open_loop,
)

_ROOT = Path(__file__).resolve().parent.parent
RESULTS = _ROOT / "benchmarks" / "results" / "proxy.json"
BODIES = ("chat", "chat-card", "thread")
TARGETS = {"chat": 0.8, "chat-card": 0.6, "thread": 0.75}
TARGET_ADDED_P99_MS = 1.0
TARGET_SCALING = 1.9
LIGHT_RPS = 200.0
PROXY_CORE, LOAD_CORE = "0", "1"

# --- bodies -------------------------------------------------------------------------------

_CHAT = (
    "Hi {agent}, I ordered the {item} last week and it still hasn't arrived. The tracking page "
    "says it has been stuck at the {city} hub since {day}. Could you check with the carrier or "
    "send a replacement? I need it before my trip on the {date}th. I also changed my delivery "
    "address last month, maybe that is the problem. Thanks so much, {name}"
)
_ITEMS = ("blue rain jacket", "espresso grinder", "pair of trail shoes", "desk lamp")
_CITIES = ("Memphis", "Louisville", "Ontario", "Newark")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday")
_NAMES = ("Priya", "Jordan", "Mei", "Tomasz", "Fatima", "Diego")
_AGENTS = ("Dana", "Chris", "Robin", "Taylor")


def chat_text(rng: random.Random, card: str | None = None) -> str:
    """About 300 characters of customer chat; with `card`, one card number in it."""
    text = _CHAT.format(
        agent=rng.choice(_AGENTS), item=rng.choice(_ITEMS), city=rng.choice(_CITIES),
        day=rng.choice(_DAYS), date=rng.randint(10, 28), name=rng.choice(_NAMES),
    )  # fmt: skip
    if card is not None:
        text = text.replace("Thanks so much", f"My card is {card}, please refund it. Thanks")
    return text


_REPLY = (
    "Hello {name},\n\nThank you for getting back to us. I have checked order {order} again and "
    "the parcel left our warehouse on {month} {day}; the carrier scanned it twice since. I have "
    "opened a trace with them (reference {trace}) and will update you as soon as they answer, "
    "usually within two business days. If it does not move by Friday we will ship a "
    "replacement at no cost.\n\nKind regards,\n{agent}\nCustomer Care | Acme Outdoor\n"
    "Mon-Fri 8:00-18:00 CET\nhttps://help.acme.example/hc/en-us\n"
)
_CUSTOMER = (
    "Hi {agent},\n\nThanks for the quick answer. The tracking page still shows the same status "
    "and nobody has called me. I am at home all week between 9 and 5, so any time works for a "
    "delivery. Could you also tell me whether the {item} is covered by the two-year warranty? "
    "The box said so but the website does not mention it anywhere.\n\nBest,\n{name}\n"
    "Sent from my phone\n"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def thread_text(rng: random.Random, size: int = 20_000) -> str:
    """An e-mail thread of about `size` characters: replies quoting the history below them."""
    name, agent = rng.choice(_NAMES), rng.choice(_AGENTS)
    parts: list[str] = []
    depth = 0
    while sum(map(len, parts)) < size:
        template = _REPLY if depth % 2 == 0 else _CUSTOMER
        body = template.format(
            name=name, agent=agent, item=rng.choice(_ITEMS), order=f"A-{rng.randint(1000, 9999)}",
            month=rng.choice(_MONTHS), day=rng.randint(1, 28), trace=f"TR{rng.randint(100, 999)}",
        )  # fmt: skip
        header = (
            f"On {rng.choice(_DAYS)[:3]}, {rng.choice(_MONTHS)} {rng.randint(1, 28)}, 2026 at "
            f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} PM {name if depth % 2 else agent} "
            "wrote:\n"
        )
        quote = "> " * depth
        parts.append("".join(quote + line + "\n" for line in (header + body).splitlines()))
        depth += 1
    return "\n".join(parts)[:size]


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid(n: int) -> str:
    # Zendesk event ids are ULIDs: 26 Crockford base32 characters, time then randomness.
    rng = random.Random(n)
    return "01J" + "".join(rng.choice(_CROCKFORD) for _ in range(23))


def webhook(text: str, n: int) -> bytes:
    """A compact Zendesk `ticket.comment_added` webhook (shape from Zendesk's docs), one line."""
    ticket = str(30000 + n % 9000)
    doc = {
        "account_id": 12514403,
        "detail": {
            "actor_id": "20978392", "assignee_id": "235324", "brand_id": "123",
            "created_at": "2099-07-04T05:27:58Z", "description": "Parcel not delivered",
            "group_id": "98738", "id": ticket, "is_public": True, "priority": "LOW",
            "requester_id": "20978392", "status": "OPEN", "subject": "Where is my parcel",
            "tags": ["retail"], "type": "QUESTION", "updated_at": "2099-07-04T05:33:18Z",
            "via": {"channel": "web_service"},
        },
        "event": {
            "comment": {
                "id": 9876500 + n, "body": text, "is_public": True,
                "author": {"id": 20978392, "is_staff": False, "name": "Customer"},
            },
        },
        "id": _ulid(n),
        "subject": f"zen:ticket:{ticket}",
        "time": "2099-07-04T05:33:18Z",
        "type": "zen:event-type:ticket.comment_added",
        "zendesk_event_version": "2022-11-06",
    }  # fmt: skip
    return json.dumps(doc).encode()


def make_bodies(kind: str, count: int, seed: int) -> list[bytes]:
    """`count` one-line bodies of one kind; `chat-card` has a new card number in each."""
    rng = random.Random(seed)
    if kind == "chat":
        return [webhook(chat_text(rng), n) for n in range(count)]
    if kind == "chat-card":
        seen: set[str] = set()
        out = []
        for n in range(count):
            card = _card(rng, n % 3)
            while card in seen:
                card = _card(rng, n % 3)
            seen.add(card)
            out.append(webhook(chat_text(rng, card), n))
        return out
    if kind == "thread":
        # A handful of distinct threads is enough: none holds a value, so none reaches the vault.
        return [webhook(thread_text(rng), n) for n in range(min(count, 50))]
    raise ValueError(f"unknown body kind {kind!r}")


# --- wrk ----------------------------------------------------------------------------------

_LUA = """
local bodies = {}
local n = 0
function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do bodies[#bodies + 1] = line end
  f:close()
end
function request()
  n = n + 1
  return wrk.format("POST", "/hook", {["Content-Type"] = "application/json"},
                    bodies[(n - 1) % #bodies + 1])
end
"""


@dataclass(slots=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str) -> WrkResult:
    """The figures of one `wrk --latency` run."""
    req = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", out, re.M)
    if not (req and rps and p50 and p99):
        raise RuntimeError("could not read wrk's output")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        requests=int(req.group(1)),
        seconds=_ms(req.group(2), req.group(3)) / 1000,
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1), p50.group(2)),
        p99_ms=_ms(p99.group(1), p99.group(2)),
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(map(int, sock.groups())) if sock else 0,
    )


def run_wrk(url: str, bodies_file: Path, lua: Path, seconds: float, connections: int) -> WrkResult:
    """wrk, pinned to the load core, one thread, `connections` connections."""
    cmd = [
        "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--latency", "-s", str(lua), url, "--", str(bodies_file),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 30)
    return parse_wrk(out.stdout)


# --- processes ----------------------------------------------------------------------------


def _pinned(core: str | None) -> list[str]:
    return ["taskset", "-c", core] if core is not None else []


def spawn_helper(role: str, port: int, loop: str, core: str, upstream: str = "") -> Proc:
    argv = [
        *_pinned(core), sys.executable, str(Path(__file__).resolve()), "--role", role,
        "--port", str(port), "--loop", loop,
    ]  # fmt: skip
    if upstream:
        argv += ["--upstream", upstream]
    popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return Proc(role, popen, port)


def spawn_redactor(workdir: Path, upstream: str, loop: str, workers: int, core: str | None) -> Proc:
    port, admin = _free_ports(2)
    argv = [
        *_pinned(core), sys.executable, "-m", "redactor", "serve", "--dev",
        "--listen", f"{HOST}:{port}", "--admin-listen", f"{HOST}:{admin}",
        "--upstream", upstream, "--data-dir", str(workdir / "data"),
        "--audit-log", str(workdir / "audit.jsonl"), "--workers", str(workers),
    ]  # fmt: skip
    env = _clean_env() | {"REDACTOR_EVENT_LOOP": loop}
    log_path = workdir / "redactor.log"
    with log_path.open("wb") as err:
        popen = subprocess.Popen(
            argv, cwd=_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip
    return Proc("redactor", popen, port, log_path, admin)


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its live children (the workers)."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def _wait_workers(proc: Proc, workers: int, timeout_s: float = 60.0) -> None:
    if workers == 1:
        return
    deadline = time.monotonic() + timeout_s
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    while len(children.read_text().split()) < workers:  # noqa: ASYNC240 - /proc, no disk
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        await asyncio.sleep(0.1)
    # Each worker opens its vault and binds after it is forked.
    await asyncio.sleep(2.0)


# --- one run ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    seconds: float = 6.0
    warmup_s: float = 1.5
    connections: int = 16
    light_seconds: float = 5.0
    bodies: tuple[str, ...] = BODIES
    loop: str = "uvloop"
    scaling: bool = True
    seed: int = 14


async def measure(
    name: str, proc: Proc, lua: Path, files: dict[str, Path], cfg: Config, workers: int = 1
) -> dict[str, dict[str, Any]]:
    """Throughput, CPU per request and light-load latency of one server on every body."""
    url = f"http://{HOST}:{proc.port}/hook"
    ready = f"http://{HOST}:{proc.admin_port}/readyz" if proc.admin_port else url
    await _wait_ready(proc, ready, timeout_s=60)
    await _wait_workers(proc, workers)
    out: dict[str, dict[str, Any]] = {}
    for kind in cfg.bodies:
        run_wrk(url, files[kind], lua, cfg.warmup_s, cfg.connections)
        cpu0 = _tree_cpu_s(proc.pid)
        res = run_wrk(url, files[kind], lua, cfg.seconds, cfg.connections)
        cpu_ms = (_tree_cpu_s(proc.pid) - cpu0) * 1000 / max(1, res.requests)
        light_bodies = files[kind].read_bytes().splitlines()
        need = int(LIGHT_RPS * cfg.light_seconds)
        light = await open_loop(
            url, (light_bodies * (need // len(light_bodies) + 1))[:need], LIGHT_RPS
        )
        out[kind] = {
            "rps": round(res.rps, 1),
            "p50_ms": round(res.p50_ms, 3),
            "p99_ms": round(res.p99_ms, 3),
            "errors": res.non_2xx + res.socket_errors + light.errors,
            "cpu_ms_per_request": round(cpu_ms, 3),
            "light_p50_ms": round(light.pct(0.5), 3),
            "light_p99_ms": round(light.pct(0.99), 3),
        }
        print(
            f"  {name:<12} {kind:<10} {res.rps:8.0f} req/s  cpu {cpu_ms:6.3f} ms/req  "
            f"p99 {res.p99_ms:6.2f} ms  @{LIGHT_RPS:.0f}/s p99 {light.pct(0.99):6.2f} ms"
        )
    return out


async def run(cfg: Config) -> dict[str, Any]:
    """Bare, redactor (1 worker, pinned) and, with `cfg.scaling`, redactor with 2 workers."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="proxy-floor-") as tmp:
        work = Path(tmp)
        lua = work / "bodies.lua"
        lua.write_text(_LUA)
        files: dict[str, Path] = {}
        for kind in cfg.bodies:
            count = 60_000 if kind == "chat-card" else 2_000
            files[kind] = work / f"{kind}.lines"
            files[kind].write_bytes(b"\n".join(make_bodies(kind, count, cfg.seed)) + b"\n")

        up_port, bare_port = _free_ports(2)
        up = spawn_helper("upstream", up_port, cfg.loop, LOAD_CORE)
        upstream = f"http://{HOST}:{up_port}"
        results: dict[str, Any] = {}
        try:
            await _wait_ready(up, upstream + "/")
            bare = spawn_helper("bare", bare_port, cfg.loop, PROXY_CORE, upstream)
            try:
                results["bare"] = await measure("bare", bare, lua, files, cfg)
            finally:
                bare.stop()
            runs = [("redactor", 1, PROXY_CORE)]
            if cfg.scaling:
                runs += [("redactor-w1", 1, None), ("redactor-w2", 2, None)]
            for name, workers, core in runs:
                workdir = work / name
                workdir.mkdir()
                proc = spawn_redactor(workdir, upstream, cfg.loop, workers, core)
                try:
                    results[name] = await measure(name, proc, lua, files, cfg, workers)
                finally:
                    proc.stop()
        finally:
            up.stop()
    return results


def summarise(results: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """Ratios against the bare proxy and the targets they are held to."""
    summary: dict[str, Any] = {}
    for kind in cfg.bodies:
        bare, red = results["bare"][kind], results["redactor"][kind]
        row = {
            "throughput_ratio": round(red["rps"] / bare["rps"], 3),
            # The throughput ratio when both are CPU bound on their core; steadier than the
            # measured ratio when other jobs share the machine.
            "cpu_ratio": round(bare["cpu_ms_per_request"] / red["cpu_ms_per_request"], 3),
            "target_ratio": TARGETS[kind],
            "cpu_ms_redactor": red["cpu_ms_per_request"],
            "cpu_ms_bare": bare["cpu_ms_per_request"],
            "added_p50_ms_at_200rps": round(red["light_p50_ms"] - bare["light_p50_ms"], 3),
            "added_p99_ms_at_200rps": round(red["light_p99_ms"] - bare["light_p99_ms"], 3),
        }
        if "redactor-w2" in results:
            row["workers_2_scaling"] = round(
                results["redactor-w2"][kind]["rps"] / results["redactor-w1"][kind]["rps"], 3
            )
        row["met"] = {
            "throughput": row["throughput_ratio"] >= TARGETS[kind],
            "added_p99": row["added_p99_ms_at_200rps"] <= TARGET_ADDED_P99_MS,
        }
        if "workers_2_scaling" in row:
            row["met"]["scaling"] = row["workers_2_scaling"] >= TARGET_SCALING
        summary[kind] = row
    return summary


# --- child roles ----------------------------------------------------------------------------


def _install_loop(loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short phases, no workers scaling")
    p.add_argument("--bodies", help="comma-separated: " + ",".join(BODIES))
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    p.add_argument("--seconds", type=float)
    p.add_argument("--no-scaling", action="store_true", help="skip the --workers 2 runs")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--role", choices=["upstream", "bare"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--upstream", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role:
        from benchmarks.proxy_backends import _serve_bare, _serve_upstream

        _install_loop(args.loop)
        if args.role == "upstream":
            _serve_upstream(args.port)
        else:
            _serve_bare(args.port, args.upstream)
        return 0
    cfg = Config(loop=args.loop)
    if args.quick:
        cfg = Config(loop=args.loop, seconds=3.0, warmup_s=1.0, light_seconds=2.5, scaling=False)
    if args.seconds:
        cfg = Config(**{**asdict(cfg), "seconds": args.seconds})
    if args.bodies:
        cfg = Config(**{**asdict(cfg), "bodies": tuple(args.bodies.split(","))})
    if args.no_scaling:
        cfg = Config(**{**asdict(cfg), "scaling": False})
    started = time.monotonic()
    results = asyncio.run(run(cfg))
    summary = summarise(results, cfg)
    print(f"\nloop {cfg.loop}; redactor / bare (one process each, pinned to core {PROXY_CORE}):")
    for kind, row in summary.items():
        scaling = row.get("workers_2_scaling")
        print(
            f"  {kind:<10} throughput {row['throughput_ratio']:.2f}x (target "
            f"{row['target_ratio']}x), by CPU {row['cpu_ratio']:.2f}x: "
            f"{row['cpu_ms_redactor']:.3f} vs "
            f"{row['cpu_ms_bare']:.3f} ms/req  added p99 @200/s "
            f"{row['added_p99_ms_at_200rps']:+.2f} ms"
            + (f"  workers 2: {scaling:.2f}x" if scaling is not None else "")
        )
    print(f"took {time.monotonic() - started:.0f} s")
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "load_average": os.getloadavg(),
            "config": asdict(cfg),
            "results": results,
            "summary": summary,
        }
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
        out = args.out.resolve()
        print(f"wrote {out.relative_to(_ROOT) if out.is_relative_to(_ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
