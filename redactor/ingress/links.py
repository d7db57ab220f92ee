"""Absolute upstream URLs in an answer, pointed back through redactor.

An agent tool reading tickets through a `redact_responses` route follows the answer's links
(`links.next`, `next_page`, `Location`, `Link`). Left alone they name the upstream, and the
tool's next call goes straight there: past redaction and past the audit. Like a reverse
proxy's `ProxyPassReverse`, every absolute URL under the route's upstream base is rewritten
to the same path under the address the client used to reach redactor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from multidict import CIMultiDict

__all__ = ["LinkRewriter"]

# Headers that carry URLs a client follows.
_URL_HEADERS = ("Location", "Content-Location", "Link")
# What may follow a base URL for it to be that base and not a longer name (`:90001`, `/apix`).
_BOUNDARY = r"(?=[/?#\"'\s<>\\,;)]|$)"


@dataclass(frozen=True, slots=True)
class LinkRewriter:
    """Maps `upstream_base/...` to `proxy_base/...` in bodies and URL headers."""

    upstream_base: str  # no trailing slash
    proxy_base: str  # no trailing slash

    @classmethod
    def for_route(
        cls, upstream: str, path_prefix: str, strip_prefix: bool, scheme: str, host: str
    ) -> LinkRewriter:
        """The rewriter for a route, as reached at `scheme://host`."""
        proxy = f"{scheme}://{host}"
        if strip_prefix:
            proxy += path_prefix.rstrip("/")
        return cls(upstream.rstrip("/"), proxy)

    def _patterns(self) -> list[tuple[re.Pattern[bytes], bytes]]:
        plain = self.upstream_base.encode()
        target = self.proxy_base.encode()
        # JSON may escape the slashes: `http:\/\/host\/next`.
        escaped = plain.replace(b"/", b"\\/")
        return [
            (re.compile(re.escape(plain) + _BOUNDARY.encode()), target),
            (re.compile(re.escape(escaped) + _BOUNDARY.encode()), target.replace(b"/", b"\\/")),
        ]

    def body(self, body: bytes) -> bytes:
        """`body` with upstream URLs pointed at redactor."""
        if self.upstream_base.encode() not in body and b":\\/\\/" not in body:
            return body
        for pattern, target in self._patterns():
            body = pattern.sub(lambda _m, t=target: t, body)
        return body

    def headers(self, headers: CIMultiDict[str]) -> None:
        """Rewrite Location, Content-Location and Link in place."""
        pattern = re.compile(re.escape(self.upstream_base) + _BOUNDARY)
        for name in _URL_HEADERS:
            values = headers.getall(name, [])
            if not values:
                continue
            del headers[name]
            for value in values:
                headers.add(name, pattern.sub(lambda _m: self.proxy_base, value))
