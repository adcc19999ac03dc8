"""The one exception hierarchy; the HTTP and WebSocket layers map it to codes."""

from __future__ import annotations

import msgspec

from schemas.common import ErrorBody, ErrorDetail

__all__ = ["ERROR_CODES", "ApiError", "ConfigError", "Conflict", "InvalidInput", "NotFound",
           "PayloadTooLarge", "RateLimited", "Unauthorized", "Unavailable", "error_body"]

# Every `code` the server can answer, over HTTP or on a feed socket. Pages show each in
# their reader's language (web/static/i18n.js, `err_<code>`), never the English message;
# tests/test_error_codes.py finds every code in the source and fails on one missing here
# or without a French and an English text.
ERROR_CODES: frozenset[str] = frozenset({
    # generic, by status (rules.errors, web.app)
    "bad_request", "invalid_input", "unauthorized", "not_found", "conflict",
    "payload_too_large", "rate_limited", "redis_unavailable", "method_not_allowed",
    "http_error", "unsupported_media_type", "malformed_json", "duplicate_key",
    # posts and their moderation
    "invalid_post", "invalid_title", "blank_text", "control_characters", "bidi_control",
    "markup_not_allowed", "content_rejected", "too_many_links", "ends_at_in_past",
    "ends_at_too_far", "until_in_past", "until_too_far", "unknown_post", "empty_patch",
    "invalid_idempotency_key", "idempotency_key_reused", "not_durable",
    # shops, hours, sign-in
    "unknown_shop", "invalid_shop", "invalid_hours", "outside_regions", "region_change",
    "position_locked", "missing_token", "invalid_token", "not_signed_in", "invalid_sign_in",
    "signin_link_used", "signin_link_invalid", "shop_disabled", "unknown_category",
    "cross_origin", "invalid_query", "presence_unavailable", "duplicate_exception_date",
    # connections and the feed socket
    "server_busy", "too_many_connections", "headers_too_large", "invalid_subscription",
    "invalid_message",
    "origin_not_allowed", "feed_unavailable", "too_many_moves", "binary_not_supported",
    "invalid_websocket_handshake", "unsupported_websocket_version",
    # photos (rules.images)
    "media_too_large", "unsupported_image_type", "image_type_mismatch", "undecodable_image",
    "too_many_pixels", "unsupported_aspect_ratio", "unknown_media", "media_quota_exceeded",
    "polyglot_image",
    # photos in an S3-compatible bucket (web.app, storage.media_s3)
    "media_unavailable",
    # local producers (services.producers)
    "invalid_producer", "unknown_producer", "too_many_producers",
    # names (rules.moderation.check_name)
    "stacked_marks", "mixed_scripts",
    # holds (services.holds, web.holds)
    "invalid_hold", "invalid_name", "post_gone", "not_holdable", "sold_out",
    "too_many_holds", "unknown_hold", "hold_ended", "invalid_hold_change",
    # alerts for followed shops (services.push, web.push, rules.push_endpoint)
    "invalid_push_subscription", "push_endpoint_not_allowed", "invalid_push_keys",
    "unknown_push_subscription",
})

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
