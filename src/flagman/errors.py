"""The one error tree of flagman.

Every error a client can see is a `FlagmanError`; each class knows its HTTP
status, its OpenAI-style `type` and `code`, and whether a fallback may try
another deployment after it.  Upstream answers are classified in one place,
`classify_upstream`, from status codes and structured error fields, never by
matching message strings.

    FlagmanError
    ├── ConfigError                 (not an HTTP error: a bad config file)
    ├── BadRequestError             400  bad_request
    │   ├── ContextWindowExceededError  400  context_window_exceeded
    │   └── ContentPolicyError      400  content_policy
    ├── AuthenticationError         401  authentication
    ├── PermissionDeniedError       403  permission
    ├── NotFoundError               404  not_found
    ├── PayloadTooLargeError        413  bad_request (body over the limit)
    ├── UnsupportedMediaTypeError   415  bad_request
    ├── RateLimitedError            429  rate_limited (keeps Retry-After)
    ├── UpstreamError               502  upstream_error
    ├── UpstreamUnavailableError    503  upstream_unavailable
    └── TimeoutError_               504  timeout
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar


class FlagmanError(Exception):
    status: ClassVar[int] = 500
    error_class: ClassVar[str] = "internal"
    openai_type: ClassVar[str] = "api_error"
    #: whether trying another deployment may help (the reliability layer reads this)
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        deployment: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after
        self.deployment = deployment

    def to_body(self) -> dict[str, Any]:
        """The OpenAI error body: {"error": {message, type, param, code}}."""
        return {
            "error": {
                "message": self.message,
                "type": self.openai_type,
                "param": self.param,
                "code": self.code or self.error_class,
            }
        }

    def headers(self) -> dict[str, str]:
        if self.retry_after is not None:
            return {"retry-after": str(max(0, round(self.retry_after)))}
        return {}


class ConfigError(FlagmanError):
    """A config file that does not validate; the message names the path."""

    error_class = "config"


class BadRequestError(FlagmanError):
    status = 400
    error_class = "bad_request"
    openai_type = "invalid_request_error"


class ContextWindowExceededError(BadRequestError):
    error_class = "context_window_exceeded"
    retryable = True  # a larger-context deployment may take it


class ContentPolicyError(BadRequestError):
    error_class = "content_policy"
    retryable = True  # another provider's policy may differ; fallback config decides


class AuthenticationError(FlagmanError):
    status = 401
    error_class = "authentication"
    openai_type = "authentication_error"


class PermissionDeniedError(FlagmanError):
    status = 403
    error_class = "permission"
    openai_type = "permission_error"


class NotFoundError(FlagmanError):
    status = 404
    error_class = "not_found"
    openai_type = "invalid_request_error"


class PayloadTooLargeError(FlagmanError):
    status = 413
    error_class = "bad_request"
    openai_type = "invalid_request_error"


class UnsupportedMediaTypeError(FlagmanError):
    status = 415
    error_class = "bad_request"
    openai_type = "invalid_request_error"


class RateLimitedError(FlagmanError):
    status = 429
    error_class = "rate_limited"
    openai_type = "rate_limit_error"
    retryable = True


class UpstreamError(FlagmanError):
    """The upstream answered with something unusable (5xx body, invalid JSON)."""

    status = 502
    error_class = "upstream_error"
    openai_type = "api_error"
    retryable = True


class UpstreamUnavailableError(FlagmanError):
    """Connection refused or reset, or a 502/503 from the upstream."""

    status = 503
    error_class = "upstream_unavailable"
    openai_type = "api_error"
    retryable = True


class TimeoutError_(FlagmanError):  # noqa: N801 - avoid shadowing the builtin
    status = 504
    error_class = "timeout"
    openai_type = "timeout_error"
    retryable = True


ERROR_CLASSES: dict[str, type[FlagmanError]] = {
    cls.error_class: cls
    for cls in (
        BadRequestError,
        ContextWindowExceededError,
        ContentPolicyError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        RateLimitedError,
        UpstreamError,
        UpstreamUnavailableError,
        TimeoutError_,
    )
}

# Structured codes/types that providers put in their error bodies.
_CONTEXT_CODES = {"context_length_exceeded", "context_window_exceeded", "string_above_max_length"}
_POLICY_CODES = {"content_filter", "content_policy_violation", "content_policy"}


_SECRETISH = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_*.-]{6,}|\bAKIA[0-9A-Z]{8,}|\bgh[pousr]_[A-Za-z0-9]{8,}"
    r"|\bAIza[0-9A-Za-z_-]{8,}|\bBearer\s+\S+",
)


def scrub_secrets(text: str) -> str:
    """Remove key-like strings from upstream messages (OpenAI's 401 echoes part of the key)."""
    return _SECRETISH.sub("[redacted]", text)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: treated as unknown rather than guessed


def classify_upstream(
    status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    deployment: str | None = None,
) -> FlagmanError:
    """Map an upstream error answer to the flagman error tree.

    `body` is the decoded JSON (or None).  Only the status and structured
    fields (`error.code`, `error.type`) are read.
    """
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, str):  # some servers send {"error": "text"}
        message, code, etype = err, None, None
    elif isinstance(err, dict):
        message = str(err.get("message") or "upstream error")
        code = err.get("code")
        etype = err.get("type")
    else:
        message, code, etype = f"upstream answered HTTP {status}", None, None
    message = scrub_secrets(message)
    markers = {str(code), str(etype)}
    retry_after = parse_retry_after((headers or {}).get("retry-after"))
    kw: dict[str, Any] = {"deployment": deployment}
    cls: type[FlagmanError]
    if markers & _CONTEXT_CODES:
        cls = ContextWindowExceededError
    elif markers & _POLICY_CODES:
        cls = ContentPolicyError
    elif status == 400 or status == 422:
        cls = BadRequestError
    elif status == 401:
        cls = AuthenticationError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    elif status == 408 or status == 504:
        cls = TimeoutError_
    elif status == 429 or etype == "rate_limit_error":
        cls = RateLimitedError
        kw["retry_after"] = retry_after
    elif status in (502, 503) or etype == "overloaded_error" or status == 529:
        cls = UpstreamUnavailableError
        kw["retry_after"] = retry_after
    else:
        cls = UpstreamError
    return cls(f"upstream: {message}", **kw)
