"""`redactor backfill zendesk`: redact values already stored in Zendesk ticket comments.

Walks tickets with the incremental ticket export (cursor based: `GET
/api/v2/incremental/tickets/cursor.json?start_time=T`, then `?cursor=C` until
`end_of_stream`), reads each ticket's comments (`GET /api/v2/tickets/{id}/comments.json`,
following `next_page`), finds values in each comment's `html_body` with the proxy's HTML codec
and detection, and redacts them with the comment-redaction endpoint (`PUT
/api/v2/comment_redactions/{comment_id}` with the comment's `html_body` in which each value is
wrapped in `<redact>`; Zendesk replaces what is inside with `▇`).

Order per comment, so a permitted agent can always resolve what was removed: the values are
tokenised in the vault (one `tokenize_many` call), then an audit record names the ticket, the
comment and the tokens (never a value), and only then is the comment changed. Zendesk cannot
put a token where the value was (redaction only blanks), so the audit record is where a
token is found from its ticket and comment.

HTTP 429 (and 503) are retried after `Retry-After` seconds. After each export page is done,
its `after_cursor` is saved in the vault's database (source `zendesk`, scope the subdomain;
see `vault/cursors.py`); a later run resumes there. Earlier versions kept it in a file in the
data directory (`backfill-zendesk-SUBDOMAIN.json`): such a file is read once, its cursor
copied to the database (unless the database already holds a newer one) and the file removed.
A dry run neither reads nor moves the cursor: it walks from `--since`. A redacted comment
holds no value any more, so a comment done twice is not redacted twice. A value Zendesk cannot redact (inside an HTML
attribute), or a redaction the API refuses, is listed for a human with the ticket and comment
ids and no value.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from redactor.audit import AuditSink, SystemEvent, now_iso
from redactor.backfill.baseurl import base_url_problem
from redactor.backfill.cursors import CursorStore, SavedCursor
from redactor.bodies import parse_body
from redactor.bodies.segments import Edit
from redactor.detection import Detector, Finding
from redactor.errors import RedactorError, VaultTimeoutError
from redactor.redaction.rewrite import TokenKey, finding_value
from redactor.redaction.scanning import find_windowed
from vault.errors import VaultError, VaultUnavailableError

__all__ = [
    "ZendeskCredentials",
    "ZendeskError",
    "ZendeskRequest",
    "ZendeskResult",
    "backfill_zendesk",
    "credentials_from",
]

# The audit record of each run (started, then finished or failed).
RUN_EVENT = "backfill_zendesk"

EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
CURSOR_SOURCE = "zendesk"
_SUBDOMAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
AUDIT_EVENT = "zendesk_comment_redacted"
REVIEW_EVENT = "zendesk_comment_for_review"
# Placeholders put where a value was, before each is swapped for `<redact>value</redact>` in
# the rebuilt markup: letters only, so the HTML codec writes them back unescaped.
_PLACEHOLDER = "zzredactorvalue{}zz"


class ZendeskError(RedactorError):
    status = 502
    code = "zendesk_unavailable"
    message = "the Zendesk API did not answer as expected"


@dataclass(frozen=True, slots=True)
class ZendeskCredentials:
    """An agent's e-mail and API token (Basic auth `email/token:api_token`)."""

    email: str
    api_token: str = field(repr=False)

    def header(self) -> str:
        raw = f"{self.email}/token:{self.api_token}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def credentials_from(environ: Mapping[str, str]) -> ZendeskCredentials | None:
    """Credentials from REDACTOR_ZENDESK_EMAIL and REDACTOR_ZENDESK_API_TOKEN (never a flag:
    a flag shows in `ps` and in shell history); None when either is missing."""
    email = environ.get("REDACTOR_ZENDESK_EMAIL", "").strip()
    token = environ.get("REDACTOR_ZENDESK_API_TOKEN", "").strip()
    return ZendeskCredentials(email, token) if email and token else None


@dataclass(frozen=True, slots=True)
class ZendeskRequest:
    subdomain: str
    tenant: str
    state_dir: Path
    since: int = 0  # UNIX time where a first run starts
    base_url: str | None = None  # default https://SUBDOMAIN.zendesk.com
    dry_run: bool = False
    max_retries: int = 8
    timeout_s: float = 60.0
    vault_timeout_s: float = 30.0

    @property
    def root(self) -> str:
        return (self.base_url or f"https://{self.subdomain}.zendesk.com").rstrip("/")

    @property
    def legacy_cursor_file(self) -> Path:
        """Where versions before the vault-kept cursor saved it (migrated once)."""
        return self.state_dir / f"backfill-zendesk-{self.subdomain}.json"


@dataclass(slots=True)
class ZendeskResult:
    tickets: int = 0
    comments: int = 0
    comments_changed: int = 0
    values: Counter[str] = field(default_factory=Counter)
    # (ticket id, comment id or None for the ticket itself, why) for a human: never a value.
    for_review: list[tuple[int, int | None, str]] = field(default_factory=list)
    rate_limited: int = 0


class _Client:
    """JSON over HTTP with the API's rate limit honoured."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        request: ZendeskRequest,
        credentials: ZendeskCredentials,
        result: ZendeskResult,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._session = session
        self._request = request
        self._auth = credentials.header()
        self._result = result
        self._sleep = sleep

    async def call(
        self,
        method: str,
        url: str,
        payload: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON body) of `url`, a path under the API root (query values in `params`,
        encoded here: a cursor is base64 and may hold `+`, `/` and `=`). Raises ZendeskError
        when retries run out."""
        url = self._request.root + url
        for _attempt in range(self._request.max_retries + 1):
            async with self._session.request(
                method,
                url,
                params=params,
                json=payload,
                headers={"Authorization": self._auth, "Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self._request.timeout_s),
            ) as resp:
                if resp.status in (429, 503):
                    self._result.rate_limited += 1
                    await self._sleep(_retry_after(resp.headers.get("Retry-After")))
                    continue
                try:
                    body = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    body = None
                return resp.status, body
        raise ZendeskError("rate limited past the retry limit")


def _api_path(root: str, next_page: Any) -> str | None:
    """The path (and query) under the API root of a `next_page` URL, or None at the end.

    The URL comes from the answer: it names Zendesk's own host even behind `--base-url` (a
    proxy, a stand-in), and the credentials must never go anywhere but the root. So only its
    path from `/api/v2/` on is kept, and it is asked of the root."""
    if not next_page:
        return None
    text = str(next_page)
    if text.startswith(root + "/"):
        return text[len(root) :]
    at = text.find("/api/v2/")
    if at < 0:
        raise ZendeskError("a next_page link outside the API")
    return text[at:]


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 60), 0.0), 3600.0)
    except ValueError:
        return 60.0


def _placeholder(n: int) -> str:
    letters = "".join(chr(ord("a") + int(d)) for d in str(n))
    return _PLACEHOLDER.format(letters)


class _Backfill:
    def __init__(
        self,
        request: ZendeskRequest,
        client: _Client,
        detector: Detector,
        tokens: Any,
        audit: AuditSink,
        out: TextIO,
        result: ZendeskResult,
        cursor: SavedCursor,
    ) -> None:
        self.cursor = cursor
        self.request = request
        self.client = client
        self.detector = detector
        self.tokens = tokens
        self.audit = audit
        self.out = out
        self.result = result

    async def run(self) -> None:
        cursor = await self.cursor.load()
        params = {"cursor": cursor} if cursor else {"start_time": str(self.request.since)}
        while True:
            status, page = await self.client.call("GET", EXPORT_PATH, params=params)
            if status != 200 or not isinstance(page, dict):
                raise ZendeskError("the ticket export failed")
            for ticket in page.get("tickets", []):
                subject = ticket.get("subject")
                if isinstance(subject, str) and find_windowed(self.detector, subject, "subject"):
                    # Comment redaction cannot reach it, and the ticket's history keeps it.
                    await self.review(int(ticket["id"]), None, "value in the ticket's subject")
                await self.ticket(int(ticket["id"]))
            after = page.get("after_cursor")
            if after:
                await self.cursor.save(str(after))
            if page.get("end_of_stream") or not after:
                return
            params = {"cursor": str(after)}

    async def ticket(self, ticket_id: int) -> None:
        self.result.tickets += 1
        url: str | None = f"/api/v2/tickets/{ticket_id}/comments.json"
        while url:
            status, page = await self.client.call("GET", url)
            if status == 404:
                return  # deleted since the export listed it
            if status != 200 or not isinstance(page, dict):
                raise ZendeskError("reading a ticket's comments failed")
            for comment in page.get("comments", []):
                await self.comment(ticket_id, comment)
            url = _api_path(self.request.root, page.get("next_page"))

    async def comment(self, ticket_id: int, comment: dict[str, Any]) -> None:
        self.result.comments += 1
        comment_id = int(comment["id"])
        markup = comment.get("html_body") or html.escape(comment.get("body") or "", quote=False)
        parsed = parse_body(markup.encode("utf-8"), "text/html; charset=utf-8")
        found: list[tuple[int, str, list[Finding]]] = []
        in_attribute = False
        for seg in parsed.segments:
            findings = find_windowed(self.detector, seg.text, seg.field_name)
            if findings:
                if seg.kind != "html_text":
                    in_attribute = True
                    continue
                found.append((seg.index, seg.text, findings))
        if in_attribute:
            await self.review(ticket_id, comment_id, "value in an HTML attribute")
        if self._value_in_attachment_names(comment):
            # Only removing the whole file could take it out (external_attachment_urls).
            await self.review(ticket_id, comment_id, "value in an attachment's file name")
        if not found:
            return
        counts = Counter(f.entity for _, _, findings in found for f in findings if f.lead)
        self.result.values.update(counts)
        verb = "would redact" if self.request.dry_run else "redacted"
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if self.request.dry_run:
            self.result.comments_changed += 1
            self.out.write(f"ticket {ticket_id} comment {comment_id}: {verb} {summary}\n")
            return
        keys = dict.fromkeys(
            (f.entity, finding_value(f, text[f.start : f.end]))
            for _, text, findings in found
            for f in findings
        )
        tokens = await self._tokenize(list(keys))
        # The vault holds the values and the audit trail names their tokens before the
        # comment changes: if either fails, the comment stays as it is.
        await self.audit.write(
            SystemEvent(
                AUDIT_EVENT,
                now_iso(),
                {
                    **self._comment_place(ticket_id, comment_id),
                    "counts": dict(counts),
                    "tokens": sorted(set(tokens)),
                },
            )
        )
        new_markup = _with_redact_tags(parsed, found)
        status, _ = await self.client.call(
            "PUT",
            f"/api/v2/comment_redactions/{comment_id}",
            {"ticket_id": ticket_id, "html_body": new_markup},
        )
        if status in (401, 403):
            # The account, not the comment: redaction needs Agent Workspace and an agent
            # allowed to redact. Every comment would fail alike: stop, the cursor stays.
            raise ZendeskError(
                f"Zendesk refused the redaction ({status}): the agent must be allowed to "
                "redact (Agent Workspace; on Professional, agents may delete tickets)"
            )
        if status != 200:
            await self.review(ticket_id, comment_id, f"redaction refused ({status})")
            return
        self.result.comments_changed += 1
        self.out.write(f"ticket {ticket_id} comment {comment_id}: {verb} {summary}\n")

    def _value_in_attachment_names(self, comment: dict[str, Any]) -> bool:
        attachments = comment.get("attachments")
        if not isinstance(attachments, list):
            return False
        return any(
            find_windowed(self.detector, name, "file_name")
            for attachment in attachments
            if isinstance(attachment, dict) and isinstance(name := attachment.get("file_name"), str)
        )

    def _comment_place(self, ticket_id: int, comment_id: int | None) -> dict[str, Any]:
        """Which comment an audit record is about (its redaction, or its listing for review)."""
        return {
            "source": "zendesk",
            "subdomain": self.request.subdomain,
            "tenant": self.request.tenant,
            "ticket_id": ticket_id,
            "comment_id": comment_id,
        }

    async def review(self, ticket_id: int, comment_id: int | None, why: str) -> None:
        """List a comment whose values stay in Zendesk for a human, as it is met: printed at
        once and (unless a dry run) audited, so a run killed later, whose cursor has moved
        past the comment, does not lose it."""
        self.result.for_review.append((ticket_id, comment_id, why))
        if not self.request.dry_run:
            await self.audit.write(
                SystemEvent(
                    REVIEW_EVENT,
                    now_iso(),
                    {**self._comment_place(ticket_id, comment_id), "reason": why},
                )
            )
        where = f"ticket {ticket_id}" + (f" comment {comment_id}" if comment_id is not None else "")
        self.out.write(f"review: {where}: {why}\n")
        self.out.flush()

    async def _tokenize(self, keys: list[TokenKey]) -> list[str]:
        try:
            async with asyncio.timeout(self.request.vault_timeout_s):
                tokens = await self.tokens.tokenize_many(self.request.tenant, keys)
        except TimeoutError:
            raise VaultTimeoutError() from None
        except VaultError:
            raise
        except OSError:
            raise VaultUnavailableError() from None
        return [str(t) for t in tokens]


def _with_redact_tags(parsed: Any, found: list[tuple[int, str, list[Finding]]]) -> str:
    """The markup with each value wrapped in `<redact>`: every other byte as it was."""
    spans: list[str] = []
    edits: dict[int, list[Edit]] = {}
    for index, text, findings in found:
        for f in findings:
            edits.setdefault(index, []).append(Edit(f.start, f.end, _placeholder(len(spans))))
            spans.append(text[f.start : f.end])
    rebuilt: str = parsed.rebuild(edits).decode("utf-8")
    for n, span in enumerate(spans):
        rebuilt = rebuilt.replace(
            _placeholder(n), "<redact>" + html.escape(span, quote=False) + "</redact>", 1
        )
    return rebuilt


def _read_legacy_cursor(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["after_cursor"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        raise ZendeskError(
            "the old cursor file in the data directory cannot be read: remove it to start over"
        ) from None


async def adopt_legacy_cursor(request: ZendeskRequest, store: Any) -> bool:
    """Move the cursor of an old `backfill-zendesk-SUBDOMAIN.json` into the vault's database,
    once: copied unless the database already has one (it is then the newer), then the file is
    removed. True when a file was adopted. Raises ZendeskError (unreadable file), the store's
    errors (the file then stays for the next run)."""
    path = request.legacy_cursor_file
    cursor = await asyncio.to_thread(_read_legacy_cursor, path)
    if cursor is None:
        return False
    if await store.read_cursor(CURSOR_SOURCE, request.subdomain) is None:
        await SavedCursor(store, CURSOR_SOURCE, request.subdomain).save(cursor)
    await asyncio.to_thread(os.remove, path)
    return True


async def backfill_zendesk(
    request: ZendeskRequest,
    credentials: ZendeskCredentials,
    *,
    detector: Detector,
    tokens: Any,
    audit: AuditSink,
    out: TextIO,
    cursors: CursorStore | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ZendeskResult:
    """Walk and redact; the counts. `tokens` is the vault adapter and `cursors` the vault's
    store (both None for a dry run).

    Raises ZendeskError, a vault error or AuditWriteError: the cursor then stays where the
    last finished page left it.
    """
    if not request.dry_run and (tokens is None or cursors is None):
        raise ZendeskError("a backfill that changes comments needs the vault and its cursors")
    result = ZendeskResult()
    cursor = SavedCursor(None if request.dry_run else cursors, CURSOR_SOURCE, request.subdomain)
    async with aiohttp.ClientSession() as session:
        client = _Client(session, request, credentials, result, sleep)
        await _Backfill(request, client, detector, tokens, audit, out, result, cursor).run()
    return result


def run_zendesk(
    request: ZendeskRequest,
    credentials: ZendeskCredentials | None,
    *,
    vault_config: Any,
    audit_path: Path,
    audit_key: bytes,
    options: Any = None,
    out: TextIO,
    err: TextIO,
) -> int:
    """`redactor backfill zendesk`: audit the run, open the vault, walk; the exit code."""
    from redactor.backfill.run import masked_name, operator_name
    from redactor.backfill.scan import detector_for
    from redactor.detection import DetectionOptions

    if credentials is None:
        print(
            "redactor: set REDACTOR_ZENDESK_EMAIL and REDACTOR_ZENDESK_API_TOKEN "
            "(credentials are never flags)",
            file=err,
        )
        return 2
    if not _SUBDOMAIN.fullmatch(request.subdomain):
        print("redactor: --subdomain takes letters, digits and '-'", file=err)
        return 2
    if request.base_url is not None and (problem := base_url_problem(request.base_url)):
        print(f"redactor: {problem}", file=err)
        return 2
    detector = detector_for(options or DetectionOptions())
    details = {
        "operator": operator_name(),
        "source": "zendesk",
        "subdomain": masked_name(detector, request.subdomain),
        "tenant": request.tenant,
        "dry_run": request.dry_run,
    }
    return asyncio.run(
        _run(request, credentials, vault_config, audit_path, audit_key, detector, details, out, err)
    )


async def _run(
    request: ZendeskRequest,
    credentials: ZendeskCredentials,
    vault_config: Any,
    audit_path: Path,
    audit_key: bytes,
    detector: Detector,
    details: dict[str, Any],
    out: TextIO,
    err: TextIO,
) -> int:
    from redactor.backfill.run import run_backfill

    async def walk(tokens: Any, store: Any, sink: Any) -> ZendeskResult:
        if store is not None and await adopt_legacy_cursor(request, store):
            print("redactor: the cursor file was moved into the vault's database", file=err)
        return await backfill_zendesk(
            request,
            credentials,
            detector=detector,
            tokens=tokens,
            audit=sink,
            out=out,
            cursors=store,
        )

    def counts(result: ZendeskResult | None) -> dict[str, Any]:
        result = result or ZendeskResult()
        return {
            "tickets": result.tickets,
            "comments": result.comments,
            "comments_changed": result.comments_changed,
            "values": dict(sorted(result.values.items())),
            "for_review": len(result.for_review),
            "rate_limited": result.rate_limited,
        }

    code, result = await run_backfill(
        source="zendesk",
        event=RUN_EVENT,
        vault_config=vault_config,
        audit_path=audit_path,
        audit_key=audit_key,
        details=details,
        dry_run=request.dry_run,
        walk=walk,
        counts=counts,
        stops=(aiohttp.ClientError, OSError),
        err=err,
    )
    if code == 2:  # nothing started: no summary
        return code
    result = result or ZendeskResult()
    values = ", ".join(f"{k} {v}" for k, v in sorted(result.values.items())) or "none"
    verb = "would change" if request.dry_run else "changed"
    print(
        f"zendesk: {result.tickets} tickets, {result.comments} comments scanned, values: "
        f"{values}; {result.comments_changed} comments {verb}; "
        f"{len(result.for_review)} for review; {result.rate_limited} rate-limit waits",
        file=err,
    )
    return code
