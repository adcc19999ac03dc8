"""The one exception hierarchy; the HTTP and WebSocket layers map it to codes."""

from __future__ import annotations

import msgspec

from schemas.common import ErrorBody, ErrorDetail

__all__ = ["ApiError", "ConfigError", "Conflict", "InvalidInput", "NotFound", "PayloadTooLarge",
           "RateLimited", "Unauthorized", "Unavailable", "error_body"]

_encode = msgspec.json.Encoder().encode


def error_body(code: str, message: str) -> bytes:
    """The contract's error body, `{"error": {"code", "message"}}`, encoded."""
    return _encode(ErrorBody(error=ErrorDetail(code=code, message=message)))


class StreetfeedError(Exception):
    """Base of every error we raise on purpose."""


class ConfigError(StreetfeedError):
    """Settings that cannot work; raised at start, never at request time."""


class ApiError(StreetfeedError):
    """A client mistake: HTTP status plus a stable machine-readable code."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def body(self) -> bytes:
        return error_body(self.code, self.message)

    def headers(self) -> dict[str, str]:
        """Headers of the answer besides its type: when to retry, if it says."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class InvalidInput(ApiError):
    status = 422
    code = "invalid_input"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"


class Unavailable(ApiError):
    status = 503
    code = "redis_unavailable"
