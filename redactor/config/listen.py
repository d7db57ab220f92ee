"""A listener address, `HOST:PORT`, as every listener setting spells it."""

from __future__ import annotations

from dataclasses import dataclass

from redactor.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_listen(value: str, name: str) -> Listen:
    """`HOST:PORT` (IPv6 in brackets). Raises ConfigError naming the setting."""
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must be HOST:PORT")
    return Listen(host.strip("[]"), int(port))
