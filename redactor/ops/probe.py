"""`redactor health`: one GET to the local admin listener, over a bare socket.

A container runs this as its HEALTHCHECK every few seconds for as long as it lives, so it
imports no HTTP client: `urllib.request` (http.client, email, ssl) alone costs more CPU than
the rest of the command (benchmarks/cli_startup.py). The admin listener speaks plain HTTP on
loopback, and only the status line matters.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

# A status line is short; a longer first line is not an HTTP answer.
MAX_STATUS_LINE_BYTES = 1024


class ProbeUrlError(ValueError):
    """The URL is not plain HTTP to a loopback address."""


def _loopback(host: str | None) -> bool:
    return host is not None and (host in ("localhost", "::1") or host.startswith("127."))


def probe(url: str, timeout_s: float) -> bool:
    """True when GET `url` answers 200. Raises ProbeUrlError for a URL that is not
    `http://` to a loopback address: a health check never reaches another host."""
    parts = urlsplit(url)
    try:
        port = parts.port or 80
    except ValueError:
        raise ProbeUrlError("the port is not a number") from None
    if parts.scheme != "http" or not _loopback(parts.hostname):
        raise ProbeUrlError("only http:// to a loopback address")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
    status = b""
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s) as sock:
            sock.sendall(request.encode("ascii"))
            while b"\r\n" not in status and len(status) < MAX_STATUS_LINE_BYTES:
                chunk = sock.recv(MAX_STATUS_LINE_BYTES)
                if not chunk:
                    break
                status += chunk
    except (OSError, UnicodeError):
        return False
    words = status.split(b"\r\n", 1)[0].split()
    return len(words) >= 2 and words[0].startswith(b"HTTP/1.") and words[1] == b"200"
