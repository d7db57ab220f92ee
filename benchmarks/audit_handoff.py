"""CPU the audit sink costs a proxied message on a busy loop, per `audit_fsync` policy.

`audit.py` measures the sink alone (records/s) and `proxy.py` the whole server; neither shows
what the sink's hand-off to its writer thread costs a message when the loop is busy with other
work, which is the case under load: the writer thread needs the GIL from a loop that is running
Python, and every hand-off (the wake of the writer, each GIL release around a system call, the
wake of the loop when the batch is written) is a context switch on the server's core.

Here 16 tasks (wrk's 16 connections) each loop over a proxied message's shape: some CPU work on
the loop (`--work-us`, the rest of a request), the message's record (`message_scanned`), more
work, the delivery record (`message_delivered`). CPU per message (every thread of this process,
user and system, from /proc) and context switches per message (every thread) are printed for
each policy, the work alone subtracted. The process is pinned to one core (`--core`), as
`proxy.py` pins the server. Figures only.

    python benchmarks/audit_handoff.py                    # batch, interval, never; 3 rounds
    python benchmarks/audit_handoff.py --policies batch --rounds 5 --messages 4000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from redactor.audit import AuditEvent, AuditSink, DeliveryEvent, now_iso  # noqa: E402

KEY = bytes(range(32))
CONNECTIONS = 16
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_and_switches() -> tuple[float, int]:
    """CPU seconds (user + system) and context switches of every thread of this process."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICK
    switches = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:
            continue
        switches += sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
        )
    return cpu, switches


def _spin(us: float) -> None:
    """Python work on the loop for about `us` microseconds (bytecode, as a request's is)."""
    end = time.perf_counter() + us / 1e6
    n = 0
    while time.perf_counter() < end:
        n += 1


async def _run(sink: AuditSink | None, messages: int, work_us: float) -> tuple[float, float]:
    per_task = messages // CONNECTIONS

    async def connection(c: int) -> None:
        for i in range(per_task):
            request_id = f"req{c:02d}x{i:08d}abcdef"
            _spin(work_us / 2)
            if sink is not None:
                await sink.write(
                    AuditEvent("message_scanned", now_iso(), request_id, "hook", "t", {}, ())
                )
            # The upstream's answer arrives on a later pass of the loop.
            await asyncio.sleep(0)
            _spin(work_us / 2)
            if sink is not None:
                await sink.write(
                    DeliveryEvent(
                        "message_delivered", now_iso(), request_id, "hook", "t", "forwarded", 200
                    )
                )

    cpu0, sw0 = _cpu_and_switches()
    await asyncio.gather(*(connection(c) for c in range(CONNECTIONS)))
    cpu1, sw1 = _cpu_and_switches()
    n = per_task * CONNECTIONS
    return (cpu1 - cpu0) * 1e6 / n, (sw1 - sw0) / n


async def _measure(
    policy: str | None, messages: int, work_us: float, tmp: Path
) -> tuple[float, float]:
    if policy is None:
        return await _run(None, messages, work_us)
    sink = AuditSink(tmp / f"audit-{policy}.jsonl", KEY, fsync=policy, checkpoint_interval_s=0)
    await sink.open()
    try:
        await _run(sink, messages // 10, work_us)  # warm: the writer thread started
        return await _run(sink, messages, work_us)
    finally:
        await sink.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policies", default="batch,interval,never")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--messages", type=int, default=3200)
    p.add_argument("--work-us", type=float, default=600.0, help="loop work per message (us)")
    p.add_argument("--core", default="0", help="pin to this core ('' for none)")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    args = p.parse_args(argv)
    if args.core:
        os.sched_setaffinity(0, {int(args.core)})
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    else:
        runner = asyncio.run
    policies = args.policies.split(",")
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in ["work", *policies]}
    with tempfile.TemporaryDirectory(prefix="audit-handoff-") as tmp:
        for r in range(args.rounds):
            order = ["work", *policies]
            if r % 2:
                order.reverse()
            for name in order:
                policy = None if name == "work" else name
                cpu, sw = runner(_measure(policy, args.messages, args.work_us, Path(tmp)))
                figures[name].append((cpu, sw))
                print(f"round {r + 1} {name:<9} cpu {cpu:8.1f} us/msg  switches {sw:5.2f}/msg")
    work = statistics.median(c for c, _ in figures["work"])
    work_sw = statistics.median(s for _, s in figures["work"])
    print(f"medians over {args.rounds} rounds (work alone: {work:.1f} us/msg, {work_sw:.2f} sw):")
    for name in policies:
        cpu = statistics.median(c for c, _ in figures[name])
        sw = statistics.median(s for _, s in figures[name])
        spread = [round(c - work, 1) for c, _ in figures[name]]
        print(
            f"  {name:<9} audit {cpu - work:7.1f} us/msg  (rounds {spread})  "
            f"switches {sw - work_sw:5.2f}/msg"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
