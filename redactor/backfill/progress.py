"""What a run shows while it works: a tqdm bar on a terminal, a plain line now and then
otherwise (a CI log, a cron mail), and one summary at the end. Counts and sizes only: never
a value, and input names as the caller masked them.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["Progress", "Tally", "summary_line"]

PLAIN_INTERVAL_S = 10.0


@dataclass(slots=True)
class Tally:
    """Counts of one input or of a whole run."""

    items: int = 0
    items_changed: int = 0
    items_as_text: int = 0  # items that did not parse as their format, scanned as text
    bytes_read: int = 0
    values: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        """Add `other`'s counts to these."""
        self.items += other.items
        self.items_changed += other.items_changed
        self.items_as_text += other.items_as_text
        self.bytes_read += other.bytes_read
        self.values.update(other.values)

    def to_data(self) -> dict[str, Any]:
        """The counts as JSON-ready data (a checkpoint, an audit record)."""
        return {
            "items": self.items,
            "items_changed": self.items_changed,
            "items_as_text": self.items_as_text,
            "bytes": self.bytes_read,
            "values": dict(sorted(self.values.items())),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Tally:
        """The counts a checkpoint recorded."""
        return cls(
            int(data["items"]),
            int(data["items_changed"]),
            int(data["items_as_text"]),
            int(data["bytes"]),
            Counter({str(k): int(v) for k, v in data["values"].items()}),
        )


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def summary_line(tally: Tally, inputs: int, elapsed_s: float, *, dry_run: bool) -> str:
    """The end-of-run summary: items scanned, values by type, items changed, elapsed."""
    values = ", ".join(f"{k} {v}" for k, v in sorted(tally.values.items())) or "none"
    found = "values found" if dry_run else "values tokenised"
    verb = "would change" if dry_run else "changed"
    rate = tally.bytes_read / elapsed_s / 1e6 if elapsed_s > 0 else 0.0
    line = (
        f"redact: {inputs} input(s), {tally.items} items scanned ({_mb(tally.bytes_read)}), "
        f"{found}: {values}; {tally.items_changed} items {verb}; "
        f"{elapsed_s:.1f} s ({rate:.1f} MB/s)"
    )
    if tally.items_as_text:
        line += (
            f"; {tally.items_as_text} items did not parse as their format and were scanned as text"
        )
    if dry_run:
        line += "; dry run: no file changed, no value stored"
    return line


class Progress:
    """Progress of one input: `advance` after each batch, `close` at its end."""

    def __init__(
        self, stream: TextIO, name: str, total_bytes: int | None, *, tty: bool, start: Tally
    ) -> None:
        self._stream = stream
        self._name = name
        self._total = total_bytes
        self._tally = Tally()
        self._tally.add(start)
        self._base_bytes = start.bytes_read  # a resumed run's rate counts this run's bytes
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Any = None
        if tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_bytes,
                initial=start.bytes_read,
                unit="B",
                unit_scale=True,
                unit_divisor=1000,
                desc=name,
                file=stream,
                dynamic_ncols=True,
            )

    def advance(self, batch: Tally) -> None:
        """Count a finished batch."""
        self._tally.add(batch)
        t = self._tally
        if self._bar is not None:
            self._bar.update(batch.bytes_read)
            self._bar.set_postfix(
                items=t.items, values=sum(t.values.values()), changed=t.items_changed, refresh=False
            )
            return
        now = time.monotonic()
        if now - self._last_line >= PLAIN_INTERVAL_S:
            self._last_line = now
            self._stream.write(self._plain_line(now) + "\n")
            self._stream.flush()

    def _plain_line(self, now: float) -> str:
        t = self._tally
        elapsed = max(now - self._started, 1e-9)
        done = _mb(t.bytes_read) + (f" of {_mb(self._total)}" if self._total else "")
        line = (
            f"redact: {self._name}: {done}, {t.items} items, "
            f"{sum(t.values.values())} values, {t.items_changed} changed, "
            f"{(t.bytes_read - self._base_bytes) / elapsed / 1e6:.1f} MB/s"
        )
        return line

    def close(self) -> None:
        """Close the bar (a plain run prints nothing more: the summary follows)."""
        if self._bar is not None:
            self._bar.close()
