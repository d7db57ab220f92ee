"""`redactor backfill slack`: redact values already stored in a Slack channel's messages.

Walks the channel with `conversations.history` (newest first; cursor pagination through
`response_metadata.next_cursor`; `oldest` from `--since`), and each thread with
`conversations.replies`. A message's `text`, its `blocks` and its legacy `attachments` are
scanned with the proxy's detection (each JSON string on its own, named by its key, as the
proxy's JSON codec reads a Slack event; and each run of rich-text `text` elements as one
text, since a value may be split by formatting). For a message with values:

1. the values are tokenised in the vault (one `tokenize_many` call, the proxy's tenant, so a
   value gets the token the proxy gives it);
2. an audit record names channel, message and tokens (never a value);
3. `chat.update` rewrites the message: `text`, and `blocks`/`attachments` when the message has
   them, each with the values replaced by their tokens and every other character as it was.
   Both are always sent when present: Slack's documentation has said both that omitted
   blocks are kept and that they are dropped when `text` is given, so nothing is left to
   that choice. A value split across rich-text elements makes that run of elements one
   element (its formatting is lost, not the text).

Before sending, the rewritten message is scanned again; if a value is still found it is not
sent (fail closed) and goes to the review list. A message the API will not edit
(`cant_update_message` for another user's message with a bot token, `edit_window_closed`,
`message_not_found`, ...) is listed for a human with its permalink (built from the
workspace URL `auth.test` gives) and the error, never a value; the run goes on. HTTP 429, and
an answer whose error is `ratelimited`, are retried after `Retry-After`.

Cursor: after each history page (and its threads) is done, the vault's database records how
far the pass got (source `slack`, scope `TEAM/CHANNEL`): `{"oldest", "latest", "top"}` while
a pass runs (a resumed run asks for messages before `latest`), `{"done_through": ts}` when a
pass is complete (the next run asks only for newer messages; replies added since to older
threads are not walked again). A message already rewritten holds tokens, not values, so a
resumed run never updates it again. A dry run reads no cursor, writes nothing and changes
nothing: it lists what would change.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import aiohttp

from redactor.audit import AuditSink, SystemEvent, now_iso
from redactor.backfill.baseurl import base_url_problem
from redactor.backfill.cursors import CursorStore, SavedCursor
from redactor.detection import Detector, Finding
from redactor.errors import RedactorError, VaultTimeoutError
from redactor.redaction.rewrite import TokenKey, value_digits
from redactor.redaction.scanning import find_windowed
from vault.errors import VaultError, VaultUnavailableError

__all__ = [
    "TOKEN_ENV",
    "SlackCredentials",
    "SlackError",
    "SlackRequest",
    "SlackResult",
    "backfill_slack",
    "credentials_from",
    "run_slack",
]

TOKEN_ENV = "REDACTOR_SLACK_TOKEN"  # noqa: S105 - the variable's name, not a token
DEFAULT_API = "https://slack.com/api"
CURSOR_SOURCE = "slack"
AUDIT_EVENT = "slack_message_redacted"
REVIEW_EVENT = "slack_message_for_review"
RUN_EVENT = "backfill_slack"
CHANNEL_PATTERN = re.compile(r"[CGD][A-Z0-9]{2,30}")
_TEAM = re.compile(r"[A-Z0-9]{2,30}")
_TS = re.compile(r"\d{1,12}\.\d{1,9}")
# Slack's error identifiers are short snake_case words; anything else is not repeated.
_ERROR_CODE = re.compile(r"[a-z_]{1,64}")

# chat.update errors that concern one message: listed for a human, the run goes on. Any
# other error (authentication, scopes, channel, Slack down) stops the run.
MESSAGE_ERRORS = frozenset(
    {
        "cant_update_message",
        "edit_window_closed",
        "message_not_found",
        "is_inactive",
        "msg_too_long",
        "block_mismatch",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_attachments",
        "no_text",
        "streaming_state_conflict",
        "external_channel_migrating",
        "update_failed",
        "cant_broadcast_message",
        "no_dual_broadcast_content_update",
    }
)


# The envelope's rate-limit errors: retried after Retry-After, like HTTP 429.
RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})


class SlackError(RedactorError):
    status = 502
    code = "slack_unavailable"
    message = "the Slack API did not answer as expected"


@dataclass(frozen=True, slots=True)
class SlackCredentials:
    """A bot (`xoxb-`) or user (`xoxp-`) token, sent as `Authorization: Bearer`."""

    token: str = field(repr=False)


def credentials_from(environ: Mapping[str, str]) -> SlackCredentials | None:
    """The token in REDACTOR_SLACK_TOKEN (never a flag: a flag shows in `ps` and in shell
    history); None when it is not set."""
    token = environ.get(TOKEN_ENV, "").strip()
    return SlackCredentials(token) if token else None


@dataclass(frozen=True, slots=True)
class SlackRequest:
    channel: str
    tenant: str
    since: float | None = None  # UNIX time where a first pass starts
    base_url: str | None = None  # the Web API root, default https://slack.com/api
    dry_run: bool = False
    page_size: int = 200
    max_retries: int = 8
    timeout_s: float = 60.0
    vault_timeout_s: float = 30.0

    @property
    def root(self) -> str:
        return (self.base_url or DEFAULT_API).rstrip("/")


@dataclass(slots=True)
class SlackResult:
    messages: int = 0
    threads: int = 0
    messages_changed: int = 0
    values: Counter[str] = field(default_factory=Counter)
    # (permalink, why) for a human: never a value.
    for_review: list[tuple[str, str]] = field(default_factory=list)
    rate_limited: int = 0


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 30), 0.0), 3600.0)
    except ValueError:
        return 30.0


def _error_code(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else "unknown_error"


def _ts_key(ts: str) -> tuple[int, int]:
    """A message timestamp as a sortable pair (floats lose its last digits)."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds), int(fraction.ljust(9, "0"))


class _Client:
    """The Web API: Bearer token, the ok/error envelope, 429 with Retry-After honoured."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        request: SlackRequest,
        credentials: SlackCredentials,
        result: SlackResult,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._session = session
        self._request = request
        self._auth = "Bearer " + credentials.token
        self._result = result
        self._sleep = sleep

    async def call(
        self, method: str, params: dict[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """The answer's JSON object (`ok` true or false). Raises SlackError when retries run
        out, or for an HTTP error or an answer that is not a JSON object."""
        url = f"{self._request.root}/{method}"
        headers = {"Authorization": self._auth}
        for _attempt in range(self._request.max_retries + 1):
            async with self._session.request(
                "POST" if body is not None else "GET",
                url,
                params=params,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._request.timeout_s),
            ) as resp:
                if resp.status in (429, 503):
                    self._result.rate_limited += 1
                    await self._sleep(_retry_after(resp.headers.get("Retry-After")))
                    continue
                try:
                    answer = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    answer = None
                if isinstance(answer, dict) and answer.get("error") in RATE_LIMIT_ERRORS:
                    # Slack also says it in the envelope (`ratelimited`, with Retry-After):
                    # the same call is made again, the message is not given up.
                    self._result.rate_limited += 1
                    await self._sleep(_retry_after(resp.headers.get("Retry-After")))
                    continue
                if resp.status != 200 or not isinstance(answer, dict):
                    raise SlackError(f"{method} answered HTTP {resp.status}")
                return answer
        raise SlackError("rate limited past the retry limit")

    async def ok(self, method: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """The answer of a read that must succeed. Raises SlackError naming Slack's error."""
        answer = await self.call(method, params)
        if answer.get("ok") is not True:
            raise SlackError(f"{method} failed: {_error_code(answer)}")
        return answer


# --- finding and rewriting values in a message (pure) ----------------------------------------

Replace = Callable[[Finding, str], str]


def _rewrite_text(detector: Detector, text: str, field_name: str | None, replace: Replace) -> str:
    findings = find_windowed(detector, text, field_name)
    if not findings:
        return text
    out: list[str] = []
    pos = 0
    for f in sorted(findings, key=lambda f: f.start):
        out.append(text[pos : f.start])
        out.append(replace(f, text[f.start : f.end]))
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def _is_text_element(node: Any) -> bool:
    return (
        isinstance(node, dict) and node.get("type") == "text" and isinstance(node.get("text"), str)
    )


def _merge_split_values(detector: Detector, elements: list[Any], replace: Replace) -> list[Any]:
    """Rich-text `text` elements side by side read as one text: a run in which a value is
    split across elements (`4111 1111 ` plain, `1111 1111` bold) becomes one element with the
    value replaced; other runs stay as they are."""
    out: list[Any] = []
    i = 0
    while i < len(elements):
        if not _is_text_element(elements[i]):
            out.append(elements[i])
            i += 1
            continue
        j = i
        while j < len(elements) and _is_text_element(elements[j]):
            j += 1
        run = elements[i:j]
        joined = "".join(e["text"] for e in run)
        rewritten = _rewrite_text(detector, joined, "text", replace)
        if len(run) > 1 and find_windowed(detector, joined, "text") and rewritten != joined:
            merged = {"type": "text", "text": rewritten}
            styles = {json.dumps(e.get("style"), sort_keys=True) for e in run}
            if len(styles) == 1 and run[0].get("style") is not None:
                merged["style"] = run[0]["style"]
            out.append(merged)
        else:
            out.extend(run)
        i = j
    return out


def _rewrite_json(detector: Detector, node: Any, replace: Replace, key: str | None = None) -> Any:
    if isinstance(node, str):
        return _rewrite_text(detector, node, key, replace)
    if isinstance(node, list):
        return [_rewrite_json(detector, item, replace, key) for item in node]
    if isinstance(node, dict):
        new = {k: _rewrite_json(detector, v, replace, k) for k, v in node.items()}
        if isinstance(new.get("elements"), list):
            new["elements"] = _merge_split_values(detector, new["elements"], replace)
        return new
    return node


# The text of a file shared in a message (files.* objects): chat.update cannot change it.
FILE_TEXT_KEYS = ("name", "title", "preview", "plain_text", "preview_plain_text")


def _values_in_files(detector: Detector, message: Mapping[str, Any]) -> bool:
    """True when a file shared in the message holds a value in its name, title or text."""
    files = message.get("files")
    if not isinstance(files, list):
        return False
    return any(
        find_windowed(detector, value, key)
        for shared in files
        if isinstance(shared, dict)
        for key in FILE_TEXT_KEYS
        if isinstance(value := shared.get(key), str)
    )


def _parts(message: Mapping[str, Any]) -> dict[str, Any]:
    """What chat.update can rewrite: text, and blocks and attachments when present."""
    parts: dict[str, Any] = {"text": message.get("text") or ""}
    for name in ("blocks", "attachments"):
        if isinstance(message.get(name), list):
            parts[name] = message[name]
    return parts


def rewrite_parts(detector: Detector, parts: Mapping[str, Any], replace: Replace) -> dict[str, Any]:
    """`parts` with each value found replaced by `replace(finding, span)`."""
    new: dict[str, Any] = {"text": _rewrite_text(detector, parts["text"], None, replace)}
    for name in ("blocks", "attachments"):
        if name in parts:
            new[name] = _rewrite_json(detector, parts[name], replace, name)
    return new


def find_values(detector: Detector, parts: Mapping[str, Any]) -> dict[TokenKey, str]:
    """The values in `parts`: (entity, digits) -> entity, in the order found."""
    keys: dict[TokenKey, str] = {}

    def collect(finding: Finding, span: str) -> str:
        keys.setdefault((finding.entity, value_digits(span)), finding.entity)
        return span

    rewrite_parts(detector, parts, collect)
    return keys


# --- the walk ---------------------------------------------------------------------------------


class _Backfill:
    def __init__(
        self,
        request: SlackRequest,
        client: _Client,
        detector: Detector,
        tokens: Any,
        audit: AuditSink,
        out: TextIO,
        result: SlackResult,
        cursor: SavedCursor,
    ) -> None:
        self.request = request
        self.client = client
        self.detector = detector
        self.tokens = tokens
        self.audit = audit
        self.out = out
        self.result = result
        self.cursor = cursor
        self.workspace_url = ""
        self.team = ""
        self.updated: set[str] = set()

    async def run(self) -> None:
        me = await self.client.ok("auth.test")
        self.workspace_url = str(me.get("url") or "").rstrip("/")
        self.team = str(me.get("team_id") or "")
        if not _TEAM.fullmatch(self.team) or not self.workspace_url.startswith("http"):
            raise SlackError("auth.test gave no workspace id or URL")
        self.cursor.scope = f"{self.team}/{self.request.channel}"
        state = await self._load_state()
        if "latest" in state:  # a pass that stopped midway: older messages are left
            oldest, latest, top = state.get("oldest"), state["latest"], state.get("top")
        else:
            since = f"{self.request.since:.6f}" if self.request.since is not None else None
            oldest, latest, top = state.get("done_through") or since, None, None
        page_cursor: str | None = None
        while True:
            params = {
                "channel": self.request.channel,
                "limit": str(self.request.page_size),
                "inclusive": "false",
            }
            if oldest:
                params["oldest"] = oldest
            if latest:
                params["latest"] = latest
            if page_cursor:
                params["cursor"] = page_cursor
            page = await self.client.ok("conversations.history", params)
            messages = [m for m in page.get("messages") or [] if self._has_ts(m)]
            for message in messages:
                await self.message(message, None)
                if (
                    int(message.get("reply_count") or 0) > 0
                    and message.get("thread_ts") == (message["ts"])
                ):
                    await self.thread(message["ts"])
            if messages:
                stamps = sorted((m["ts"] for m in messages), key=_ts_key)
                newest = stamps[-1] if top is None else max(top, stamps[-1], key=_ts_key)
                top = newest
                # Pages run newest to oldest: everything from here up is done.
                await self._save({"oldest": oldest, "latest": stamps[0], "top": top})
            page_cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or not page_cursor:
                break
        done = top or oldest
        if done:
            await self._save({"done_through": done})

    def _has_ts(self, message: Any) -> bool:
        return isinstance(message, dict) and _TS.fullmatch(str(message.get("ts", ""))) is not None

    async def _load_state(self) -> dict[str, Any]:
        saved = await self.cursor.load()
        if saved is None:
            return {}
        try:
            state = json.loads(saved)
        except ValueError:
            state = None
        if not isinstance(state, dict) or not all(
            isinstance(v, str) and _TS.fullmatch(v) for v in state.values() if v is not None
        ):
            raise SlackError("the saved cursor cannot be read: clear it to start over")
        return state

    async def _save(self, state: dict[str, Any]) -> None:
        await self.cursor.save(json.dumps(state, sort_keys=True))

    async def thread(self, thread_ts: str) -> None:
        self.result.threads += 1
        page_cursor: str | None = None
        while True:
            params = {
                "channel": self.request.channel,
                "ts": thread_ts,
                "limit": str(self.request.page_size),
            }
            if page_cursor:
                params["cursor"] = page_cursor
            page = await self.client.call("conversations.replies", params)
            if page.get("ok") is not True:
                if _error_code(page) == "thread_not_found":
                    return  # deleted since the history listed it
                raise SlackError(f"conversations.replies failed: {_error_code(page)}")
            for reply in page.get("messages") or []:
                if self._has_ts(reply) and reply["ts"] != thread_ts:  # the parent comes first
                    await self.message(reply, thread_ts)
            page_cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or not page_cursor:
                return

    def permalink(self, ts: str, thread_ts: str | None) -> str:
        link = f"{self.workspace_url}/archives/{self.request.channel}/p{ts.replace('.', '')}"
        if thread_ts is not None:
            link += f"?thread_ts={thread_ts}&cid={self.request.channel}"
        return link

    async def message(self, message: dict[str, Any], thread_ts: str | None) -> None:
        self.result.messages += 1
        ts = message["ts"]
        if ts in self.updated:  # a thread broadcast is listed in history and in its thread
            return
        parts = _parts(message)
        keys = find_values(self.detector, parts)
        if _values_in_files(self.detector, message):
            # chat.update cannot change a file: its name, title or preview stays for a human.
            await self.review(
                self.permalink(ts, thread_ts), ts, thread_ts, "value in a shared file's text"
            )
        if not keys:
            return
        counts = Counter(entity for entity, _ in keys)
        self.result.values.update(counts)
        link = self.permalink(ts, thread_ts)
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if self.request.dry_run:
            self.result.messages_changed += 1
            self.out.write(f"{link}: would redact {summary}\n")
            return
        ordered = list(keys)
        tokens = await self._tokenize(ordered)
        token_of = dict(zip(ordered, tokens, strict=True))
        # The vault holds the values and the audit trail names their tokens before the
        # message changes: if either fails, the message stays as it is.
        await self.audit.write(
            SystemEvent(
                AUDIT_EVENT,
                now_iso(),
                {
                    **self._message_place(ts, thread_ts),
                    "counts": dict(counts),
                    "tokens": sorted(set(tokens)),
                },
            )
        )

        def token(finding: Finding, span: str) -> str:
            return token_of[(finding.entity, value_digits(span))]

        try:
            new = rewrite_parts(self.detector, parts, token)
        except KeyError:  # a value seen only once the text around it changed
            new = None
        if new is None or find_values(self.detector, new):
            await self.review(link, ts, thread_ts, "a value could not be rewritten; not sent")
            return
        payload: dict[str, Any] = {"channel": self.request.channel, "ts": ts, **new}
        answer = await self.client.call("chat.update", body=payload)
        if answer.get("ok") is not True:
            error = _error_code(answer)
            if error not in MESSAGE_ERRORS:
                raise SlackError(f"chat.update failed: {error}")
            await self.review(link, ts, thread_ts, error)
            return
        self.updated.add(ts)
        self.result.messages_changed += 1
        self.out.write(f"{link}: redacted {summary}\n")

    def _message_place(self, ts: str, thread_ts: str | None) -> dict[str, Any]:
        """Which message an audit record is about (its redaction, or its listing for review)."""
        return {
            "source": "slack",
            "team": self.team,
            "channel": self.request.channel,
            "ts": ts,
            "thread_ts": thread_ts,
            "tenant": self.request.tenant,
        }

    async def review(self, link: str, ts: str, thread_ts: str | None, why: str) -> None:
        """List a message whose values stay in Slack for a human, as it is met: printed at
        once and audited, so a run killed later, whose cursor has moved past the message,
        does not lose it."""
        self.result.for_review.append((link, why))
        if self.request.dry_run:
            self.out.write(f"review: {link}: {why}\n")
            return
        await self.audit.write(
            SystemEvent(
                REVIEW_EVENT,
                now_iso(),
                {**self._message_place(ts, thread_ts), "permalink": link, "reason": why},
            )
        )
        self.out.write(f"review: {link}: {why}\n")
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


async def backfill_slack(
    request: SlackRequest,
    credentials: SlackCredentials,
    *,
    detector: Detector,
    tokens: Any,
    audit: AuditSink,
    out: TextIO,
    cursors: CursorStore | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> SlackResult:
    """Walk the channel and redact; the counts. `tokens` is the vault adapter and `cursors`
    the vault's store (both None for a dry run).

    Raises SlackError, a vault error or AuditWriteError: the cursor then stays where the last
    finished page left it.
    """
    if not CHANNEL_PATTERN.fullmatch(request.channel):
        raise SlackError("--channel takes a channel id such as C0123456789")
    if not request.dry_run and (tokens is None or cursors is None):
        raise SlackError("a backfill that changes messages needs the vault and its cursors")
    result = SlackResult()
    cursor = SavedCursor(None if request.dry_run else cursors, CURSOR_SOURCE, request.channel)
    async with aiohttp.ClientSession() as session:
        client = _Client(session, request, credentials, result, sleep)
        await _Backfill(request, client, detector, tokens, audit, out, result, cursor).run()
    return result


def run_slack(
    request: SlackRequest,
    credentials: SlackCredentials | None,
    *,
    vault_config: Any,
    audit_path: Any,
    audit_key: bytes,
    out: TextIO,
    err: TextIO,
) -> int:
    """`redactor backfill slack`: audit the run, open the vault, walk; the exit code."""
    from redactor.backfill.run import operator_name
    from redactor.backfill.scan import detector_for
    from redactor.detection import DetectionOptions

    if credentials is None:
        print(f"redactor: set {TOKEN_ENV} (a token is never a flag)", file=err)
        return 2
    if not CHANNEL_PATTERN.fullmatch(request.channel):
        print("redactor: --channel takes a channel id such as C0123456789", file=err)
        return 2
    if request.base_url is not None and (problem := base_url_problem(request.base_url)):
        print(f"redactor: {problem}", file=err)
        return 2
    details = {
        "operator": operator_name(),
        "source": "slack",
        "channel": request.channel,
        "tenant": request.tenant,
        "dry_run": request.dry_run,
    }
    detector = detector_for(DetectionOptions())
    return asyncio.run(
        _run(request, credentials, vault_config, audit_path, audit_key, detector, details, out, err)
    )


async def _run(
    request: SlackRequest,
    credentials: SlackCredentials,
    vault_config: Any,
    audit_path: Any,
    audit_key: bytes,
    detector: Detector,
    details: dict[str, Any],
    out: TextIO,
    err: TextIO,
) -> int:
    from redactor.backfill.run import run_backfill

    async def walk(tokens: Any, store: Any, sink: Any) -> SlackResult:
        return await backfill_slack(
            request,
            credentials,
            detector=detector,
            tokens=tokens,
            audit=sink,
            out=out,
            cursors=store,
        )

    def counts(result: SlackResult | None) -> dict[str, Any]:
        result = result or SlackResult()
        return {
            "messages": result.messages,
            "threads": result.threads,
            "messages_changed": result.messages_changed,
            "values": dict(sorted(result.values.items())),
            "for_review": len(result.for_review),
            "rate_limited": result.rate_limited,
        }

    code, result = await run_backfill(
        source="slack",
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
    result = result or SlackResult()
    values = ", ".join(f"{k} {v}" for k, v in sorted(result.values.items())) or "none"
    verb = "would change" if request.dry_run else "changed"
    print(
        f"slack: {result.messages} messages ({result.threads} threads) scanned, values: "
        f"{values}; {result.messages_changed} messages {verb}; "
        f"{len(result.for_review)} for review; {result.rate_limited} rate-limit waits",
        file=err,
    )
    return code
