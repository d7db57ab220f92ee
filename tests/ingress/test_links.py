"""Upstream URLs in answers are pointed back through redactor, and nothing else changes."""

from __future__ import annotations

from multidict import CIMultiDict

from redactor.ingress.links import LinkRewriter


def _rewriter(strip_prefix: bool = False) -> LinkRewriter:
    return LinkRewriter.for_route(
        "https://acme.zendesk.com/", "/zd/", strip_prefix, "http", "redactor.local:8080"
    )


def test_json_links_plain_and_with_escaped_slashes_are_rewritten() -> None:
    body = (
        b'{"links": {"next": "https://acme.zendesk.com/api/v2/t?page=2"},'
        b' "next_page": "https:\\/\\/acme.zendesk.com\\/api\\/v2\\/t?page=2"}'
    )
    out = _rewriter().body(body)
    assert out == (
        b'{"links": {"next": "http://redactor.local:8080/api/v2/t?page=2"},'
        b' "next_page": "http:\\/\\/redactor.local:8080\\/api\\/v2\\/t?page=2"}'
    )


def test_a_longer_host_or_another_host_is_left_alone() -> None:
    body = b'"https://acme.zendesk.com.evil.example/x" "https://other.example/x"'
    assert _rewriter().body(body) == body


def test_with_strip_prefix_the_route_prefix_is_put_back() -> None:
    out = _rewriter(strip_prefix=True).body(b'"https://acme.zendesk.com/api/v2/t"')
    assert out == b'"http://redactor.local:8080/zd/api/v2/t"'


def test_location_and_link_headers_are_rewritten() -> None:
    headers = CIMultiDict(
        {
            "Location": "https://acme.zendesk.com/api/v2/t/2",
            "Link": '<https://acme.zendesk.com/api/v2/t?page=2>; rel="next"',
            "X-Other": "https://acme.zendesk.com/keep",
        }
    )
    _rewriter().headers(headers)
    assert headers["Location"] == "http://redactor.local:8080/api/v2/t/2"
    assert headers["Link"] == '<http://redactor.local:8080/api/v2/t?page=2>; rel="next"'
    assert headers["X-Other"] == "https://acme.zendesk.com/keep"
