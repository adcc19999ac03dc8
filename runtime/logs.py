"""Structured JSON logs, one object per line, with the request id of the request at hand.

Query strings are redacted from every record (they carry passers-by's
positions), and nothing here ever formats a token: request headers are not
logged.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import time

__all__ = [
    "REQUEST_ID",
    "AcceptErrorsOncePerSecond",
    "QuietRoutineJobs",
    "log_access",
    "request_id_from",
    "setup_logging",
]

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                        default=None)
_QUERY = re.compile(r"\?[^\s\"']*")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("streetfeed.access")


def request_id_from(given: str | None) -> str:
    """The client's `X-Request-ID` when it is well formed, else a new one."""
    return given if given and _VALID_ID.match(given) else secrets.token_hex(8)


def log_access(method: str, path: str, status: int, started: float, request_id: str) -> None:
    """The one access line of an HTTP request or a feed socket, written when it ends.

    `path` never carries a query string; `started` is a time.monotonic() reading."""
    token = REQUEST_ID.set(request_id)
    try:
        access_log.info("%s %s %s", method, path, status,
                        extra={"method": method, "path": path, "status": status,
                               "duration_ms": round((time.monotonic() - started) * 1000, 1)})
    finally:
        REQUEST_ID.reset(token)


def redact(text: str) -> str:
    return _QUERY.sub("?…", text)


class RedactQueries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = redact(record.msg)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class AcceptErrorsOncePerSecond(logging.Filter):
    """asyncio logs every failed accept() with its traceback: out of file descriptors, a
    flood of connections wrote 434,973 of them (253 MB) in 30 s. One a second is enough,
    saying how many were left out."""

    def __init__(self) -> None:
        super().__init__()
        self._last = float("-inf")
        self._left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "accept" not in str(record.msg):
            return True
        now = time.monotonic()
        if now - self._last < 1.0:
            self._left_out += 1
            return False
        self._last = now
        if self._left_out:
            record.msg = f"{record.msg} ({self._left_out} more left out of the log)"
            self._left_out = 0
        return True


class QuietRoutineJobs(logging.Filter):
    """arq logs every job's start and success at info: the holds' expiry runs every 5 s,
    so that was 34,560 lines a day saying nothing. The scheduled (cron) jobs log what they
    did themselves when they did something; their failures and retries, and every other
    job's lines, still go through."""

    # arq's "started" and "succeeded" lines (arq/worker.py, pinned in pyproject.toml).
    _ROUTINE = ("%6.2fs → %s(%s)%s", "%6.2fs ← %s ● %s")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or record.msg not in self._ROUTINE:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        # The job's reference: "<job id>:<function>", and a cron job's id starts "cron:".
        return not (len(args) > 1 and isinstance(args[1], str) and args[1].startswith("cron:"))


def setup_logging(level: int = logging.INFO, fmt: str = "json") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactQueries())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "streetfeed", "arq"):
        logging.getLogger(name).addFilter(RedactQueries())
    logging.getLogger("asyncio").addFilter(AcceptErrorsOncePerSecond())
    logging.getLogger("arq.worker").addFilter(QuietRoutineJobs())
