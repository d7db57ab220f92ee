"""Purge that cannot outrun the clock: what a purge would do, and why it must not run.

Pure: the vault gathers a `PurgePlan` (counts and clocks, read from the store), these
functions judge and describe it. A purge counts idleness from a clock; if that clock is
ahead (a host whose time jumped, a container with a wrong clock), "idle for 90 days" takes
tokens minted seconds ago. Two cheap checks stop it: the cutoff must not be later than the
vault's newest activity, and the clock must agree with the clocks of the running processes
that checked in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from vault.stores.base import Heartbeat

# How far this command's clock may be from a running process's check-in (beyond the
# check-in's own age, at most its expiry) before a purge is refused without --force.
MAX_CLOCK_SKEW_S = 300


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """What `purge --older-than` would do: the cutoff and the clocks it was counted from."""

    older_than_s: int
    # The clock the cutoff counts from: the store's (PostgreSQL now()) or this host's.
    now: int
    clock: str
    cutoff: int
    candidates: int
    newest_activity: int | None
    # This command's own clock, and the check-ins of running processes live at `now`.
    local_now: int
    beats: tuple[Heartbeat, ...]


def iso(seconds: int) -> str:
    """Epoch seconds as a UTC date and time: `2026-12-07T09:05:00Z`."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def purge_refusals(plan: PurgePlan, max_skew_s: int = MAX_CLOCK_SKEW_S) -> list[str]:
    """Why the purge must not run without --force, one sentence each; empty when it may."""
    problems: list[str] = []
    if plan.candidates and (plan.newest_activity is None or plan.cutoff > plan.newest_activity):
        newest = "never" if plan.newest_activity is None else iso(plan.newest_activity)
        problems.append(
            f"the cutoff {iso(plan.cutoff)} is later than the vault's newest activity "
            f"({newest}): every token would go; is the clock ahead?"
        )
    for beat in plan.beats:
        # A check-in is at most one expiry window old when it is live.
        allowed = max_skew_s + max(beat.expires_at - beat.seen_at, 0)
        skew = plan.local_now - beat.seen_at
        if abs(skew) > allowed:
            problems.append(
                f"this clock ({iso(plan.local_now)}) is {abs(skew)}s "
                f"{'ahead of' if skew > 0 else 'behind'} running process {beat.process_id} "
                f"(checked in at {iso(beat.seen_at)}; bound {allowed}s)"
            )
    return problems


def describe_plan(plan: PurgePlan) -> str:
    """The dry run's answer: counts and the cutoff as a date."""
    return (
        f"would purge {plan.candidates} tokens idle since before {iso(plan.cutoff)} "
        f"(older than {plan.older_than_s}s by {plan.clock}, now {iso(plan.now)}); "
        f"newest activity in the vault: "
        f"{'none' if plan.newest_activity is None else iso(plan.newest_activity)}"
    )
