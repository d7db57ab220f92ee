"""Steps the scan-lane tests run in a scan worker: stdlib only, so a spawned worker loads
this module in no time (a test's budget measures the step, not an import)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def block_until(flag: str, started: str) -> str:
    """A step that runs until `flag` exists (a hostile body that never finishes)."""
    Path(started).touch()
    while not os.path.exists(flag):
        time.sleep(0.01)
    return "released"


def echo(value: object) -> object:
    return value


def scan_forever(*_args: object) -> None:
    """Stands in for scan_in_worker: a scan that never ends."""
    while True:
        time.sleep(0.05)
