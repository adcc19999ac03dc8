"""JSON responses encoded with msgspec, and the error body of the contract."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from rules.errors import ApiError
from schemas.common import ErrorBody, ErrorDetail

__all__ = ["JSONResponse", "api_error_response", "error_response"]

_encode = msgspec.json.Encoder().encode


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encode(content)


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=ErrorDetail(code=code, message=message)),
                        status_code=status, headers=headers)


def api_error_response(exc: ApiError) -> JSONResponse:
    """The answer to a refusal: its status and code, and when to retry if it says. A
    process too busy for another socket or upload also closes the connection: kept alive,
    refused clients held the tenth of connections kept for pages and health checks (cold
    attacker of issue 19: /healthz answered 503 for ~5 s after 100 refused streams)."""
    headers = exc.headers()
    if exc.code == "server_busy":
        headers["Connection"] = "close"
    return error_response(exc.status, exc.code, exc.message, headers=headers or None)
