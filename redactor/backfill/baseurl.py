"""`--base-url` of a helpdesk backfill: where its credentials are sent."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["base_url_problem"]


def base_url_problem(url: str) -> str | None:
    """Why `url` must not receive the API's credentials, or None when it may: https, or
    plain http to this machine only (a stand-in, a local proxy). Over plain http to another
    host a token or password would cross the network readable by anyone on the path."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "--base-url is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme != "http" or not host:
        return "--base-url takes an https:// URL (or http:// to this machine)"
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return "--base-url over plain http is for this machine only: the credentials would cross the network unencrypted; use https"
