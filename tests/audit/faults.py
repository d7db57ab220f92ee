"""Faults the audit trail must survive, made on purpose: a disk that fills."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest


class FullDisk:
    """`os.write` as a disk that fills: while `full`, writes to files under `root` get `room`
    more bytes (a short write), then fail with ENOSPC, as the kernel does. Writes elsewhere
    (sockets, pipes, other files) are untouched."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self._real = os.write
        self._root = str(root.resolve())
        self.full = False
        self.room = 0
        self.refused = 0  # writes that got ENOSPC
        monkeypatch.setattr(os, "write", self._write)

    def fill(self, room: int = 0) -> None:
        """From now on, `room` bytes fit, then nothing."""
        self.full, self.room = True, room

    def free(self) -> None:
        """Space returns."""
        self.full = False

    def _write(self, fd: int, data: bytes | memoryview) -> int:
        if self.full and self._on_disk(fd):
            if self.room <= 0:
                self.refused += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written = self._real(fd, bytes(data[: self.room]))
            self.room -= written
            return written
        return self._real(fd, data)

    def _on_disk(self, fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(self._root)
        except OSError:
            return False
