"""The exception hierarchy: every error has an HTTP status, a stable code and a fixed message.

Messages are fixed strings on purpose: input never goes into an exception text, so a raw
card number or SSN cannot leak through an error body, a log line or a traceback.
"""

from __future__ import annotations


class RedactorError(Exception):
    """Base of every error redactor raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    message: str = "internal error"
    # Seconds a client should wait before trying again (the Retry-After header), if any.
    retry_after_s: int | None = None

    def __init__(self, detail: str | None = None) -> None:
        # `detail` is a short, value-free hint chosen by our code (a key name, a line
        # number), never caller input.
        self.detail = detail
        super().__init__(self.message if detail is None else f"{self.message}: {detail}")

    def answer_fields(self) -> dict[str, str]:
        """Fields the error answer carries besides `error` and `request_id`: fixed texts our
        code chose (a field name, what it must be), never input."""
        return {}


class ConfigError(RedactorError):
    """A setting, key file or policy file is invalid; raised at start, never per request."""

    code = "config_invalid"
    message = "configuration is invalid"


def file_problem(path: object, exc: BaseException) -> str:
    """Why a file could not be read, in one operator's phrase: the path and what is wrong
    (never the content, which may be a secret)."""
    if isinstance(exc, FileNotFoundError):
        return f"{path} does not exist"
    if isinstance(exc, PermissionError):
        return f"{path} cannot be read: permission denied"
    if isinstance(exc, IsADirectoryError):
        return f"{path} is a directory, not a file"
    if isinstance(exc, UnicodeDecodeError):
        return f"{path} is not UTF-8 text"
    return f"{path} cannot be read: {type(exc).__name__}"


class InputLineError(RedactorError):
    """A line given to `redactor detect` is not a JSON object with a string `text`."""

    status = 400
    code = "input_invalid"
    message = "input line is not a JSON object with a string 'text'"


class DetectionError(RedactorError):
    """The detector failed on a text; callers fail closed."""

    status = 503
    code = "detection_failed"
    message = "detection failed"


# --- bodies (parse/rebuild): the caller's fault, 4xx -------------------------------------------


class BodyError(RedactorError):
    """Base for a request body that cannot be handled; nothing is forwarded."""

    status = 422
    code = "body_unparseable"
    message = "request body could not be parsed"


class BodyUnparseableError(BodyError):
    """The body does not parse as its declared content type or encoding."""


class UnsupportedMediaTypeError(BodyError):
    """The route refuses this content type (415) instead of scanning it as text."""

    status = 415
    code = "unsupported_media_type"
    message = "content type is not accepted on this route"


class UndeclaredCharsetError(UnsupportedMediaTypeError):
    """Text that is not UTF-8 or ASCII-compatible (NUL bytes: UTF-16/32 without a BOM) and
    names no charset: a reader could decode it as something redactor did not read (415)."""

    code = "charset_undeclared"
    message = "text that is not UTF-8 needs a declared charset or a byte order mark"


class UnreadablePartError(UnsupportedMediaTypeError):
    """A part redactor cannot read (a PDF, an image, an archive) on a route whose
    `unreadable_parts` policy is `reject` (415)."""

    code = "unreadable_part"
    message = "message holds a part that cannot be scanned (PDF, image, archive)"

    def __init__(self, kinds: tuple[str, ...] = ()) -> None:
        super().__init__()
        # What the refused parts were (pdf, image, archive, binary), for the metric.
        self.kinds = kinds


class UnreadableAnswerPartError(UnreadablePartError):
    """The same in an upstream's answer on a `redact_responses` route: the upstream's fault."""

    status = 502


class BodyTooLargeError(BodyError):
    """The body exceeds the route's size limit (413)."""

    status = 413
    code = "body_too_large"
    message = "request body exceeds the size limit"


# Limits on what one body may hold (bodies/limits.py): the code names the limit.


class BodyLimitError(BodyError):
    """A body is within the size limit but holds more than the route allows."""

    status = 413


class TooManySegmentsError(BodyLimitError):
    code = "too_many_segments"
    message = "request body holds more scannable values than allowed"


class TooManyFieldsError(BodyLimitError):
    code = "too_many_fields"
    message = "request body holds more fields than allowed"


class TooManyPartsError(BodyLimitError):
    code = "too_many_parts"
    message = "request body holds more parts than allowed"


class TooManyEntitiesError(BodyLimitError):
    code = "too_many_entities"
    message = "request body holds more character references or escapes than allowed"


class TooManyDigitsError(BodyLimitError):
    code = "too_many_digits"
    message = "request body holds more digits to scan than allowed"


class TooManyTagsError(BodyLimitError):
    code = "too_many_tags"
    message = "request body holds more HTML tags than allowed"


class NestingTooDeepError(BodyLimitError):
    status = 422
    code = "nesting_too_deep"
    message = "request body is nested deeper than allowed"


# --- egress: what leaves must be readable --------------------------------------------------------


class UnreadableValueError(RedactorError):
    """The egress verifier read a card number or SSN in the outgoing message that redaction did
    not see (it hid in an encoding redaction does not read): nothing is forwarded.

    `reading` names where it was found (`body>gzip>json>base64`), built from our own labels
    only, never from the message; it goes into the audit record.
    """

    status = 422
    code = "unreadable_value"
    message = "message holds a value redactor could not read"

    def __init__(self, reading: str) -> None:
        super().__init__()
        self.reading = reading

    def __reduce__(self) -> tuple[type, tuple[str]]:
        # Raised in a scan worker, it comes back pickled: rebuilt from its reading.
        return type(self), (self.reading,)


class UnreadableAnswerError(UnreadableValueError):
    """The same, in an upstream's answer on a `redact_responses` route: the upstream's fault."""

    status = 502


class UnverifiableMessageError(RedactorError):
    """Reading the outgoing message the generous way passed a bound (depth, decoded size,
    number of readings): what cannot be verified is not forwarded."""

    status = 422
    code = "unverifiable_message"
    message = "message could not be verified within the egress limits"

    def __init__(self, reading: str) -> None:
        super().__init__()
        self.reading = reading

    def __reduce__(self) -> tuple[type, tuple[str]]:
        # Raised in a scan worker, it comes back pickled: rebuilt from its reading.
        return type(self), (self.reading,)


# --- shared by both sides -----------------------------------------------------------------------


class VaultTimeoutError(RedactorError):
    """The vault did not answer within `vault_timeout_s` (503: retry later)."""

    status = 503
    code = "vault_unavailable"
    message = "vault did not answer in time"


# --- agents: identity and permission -----------------------------------------------------------


class AuthError(RedactorError):
    """The caller's identity could not be verified (401). `code` is the stable reason code."""

    status = 401
    code = "unauthenticated"
    message = "authentication failed"


class PermissionDeniedError(RedactorError):
    """A verified caller asked for more than policy allows (403)."""

    status = 403
    code = "permission_denied"
    message = "not permitted"


class PolicyError(ConfigError):
    """A policy file does not parse or does not match the schema."""

    code = "policy_invalid"
    message = "policy file is invalid"
