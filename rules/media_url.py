"""Where photos are kept when not in the data dir: `STREETFEED_MEDIA_URL` (docs/deploy.md).

`s3://bucket?endpoint=http://host:port&region=...&prefix=...`: an S3-compatible bucket, for
web processes on several hosts. Credentials are never part of it: the S3 client reads the
standard AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY...), so the URL can be
logged and shown. Pure parsing, no I/O; a malformed URL is refused at start with the part
that is wrong, never by echoing it whole (it might carry a secret by mistake).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

__all__ = ["S3Location", "parse_media_url"]

# S3's own bucket naming rule (3-63 lowercase letters, digits, dots and hyphens), which
# every S3-compatible server accepts.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# AWS regions ("eu-west-3") and the names other S3-compatible servers use ("garage", "auto").
_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Each segment of the prefix: object keys are built from it, so it stays plain (never "."
# or "..", which some servers would resolve).
_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")
_KEYS = ("endpoint", "region", "prefix")
_EXPECTED = "expected s3://bucket?endpoint=https://host[:port]&region=...&prefix=..."


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    # None: AWS S3 itself, found from the region.
    endpoint: str | None = None
    # None: the client's default (AWS_REGION / AWS_DEFAULT_REGION, else us-east-1).
    region: str | None = None
    # Object keys start with `<prefix>/` ("" : at the bucket's root); no leading or
    # trailing slash.
    prefix: str = ""

    @property
    def allow_http(self) -> bool:
        """A plain-HTTP endpoint is allowed only when named so (a local S3 server)."""
        return self.endpoint is not None and self.endpoint.startswith("http://")


def parse_media_url(value: str) -> S3Location:
    """The bucket `value` names, or ValueError saying what is wrong with it."""
    try:
        url = urlsplit(value.strip())
        has_port = url.port is not None
    except ValueError:
        raise ValueError(f"not a URL; {_EXPECTED}") from None
    if url.scheme != "s3":
        raise ValueError(f"{_EXPECTED} (unset: the data dir)")
    if url.username is not None or url.password is not None:
        raise ValueError("credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and "
                         "AWS_SECRET_ACCESS_KEY in the environment")
    bucket = url.netloc
    if has_port or not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"bucket: expected 3-63 lowercase letters, digits, '.' and '-', "
                         f"got {bucket!r}")
    if url.path not in ("", "/") or url.fragment:
        raise ValueError(f"nothing may follow the bucket but ?endpoint=, region=, prefix=; "
                         f"{_EXPECTED}")
    try:
        pairs = parse_qsl(url.query, keep_blank_values=True, strict_parsing=bool(url.query))
    except ValueError:
        raise ValueError(f"malformed query; {_EXPECTED}") from None
    given: dict[str, str] = {}
    for key, item in pairs:
        if key not in _KEYS:
            # Only the key is named: a misplaced secret must not reach a log.
            raise ValueError(f"unknown parameter {key!r}: expected {', '.join(_KEYS)}")
        if key in given:
            raise ValueError(f"{key} is given twice")
        given[key] = item
    return S3Location(bucket=bucket, endpoint=_endpoint(given.get("endpoint")),
                      region=_region(given.get("region")), prefix=_prefix(given.get("prefix")))


def _endpoint(value: str | None) -> str | None:
    if value is None:
        return None
    if "@" in value:  # said before anything echoes the value
        raise ValueError("endpoint: credentials do not belong in the URL: set "
                         "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
    try:
        url = urlsplit(value)
        _ = url.port  # raises on a port that is not a number
    except ValueError:
        raise ValueError(f"endpoint: expected http(s)://host[:port], got {value!r}") from None
    if (url.scheme not in ("http", "https") or not url.hostname
            or url.path not in ("", "/") or url.query or url.fragment):
        raise ValueError(f"endpoint: expected http(s)://host[:port], got {value!r}")
    return f"{url.scheme}://{url.netloc}"


def _region(value: str | None) -> str | None:
    if value is None:
        return None
    if not _REGION.match(value):
        raise ValueError(f"region: expected letters, digits, '-' and '_', got {value!r}")
    return value


def _prefix(value: str | None) -> str:
    prefix = (value or "").strip("/")
    if prefix and not all(_SEGMENT.match(s) for s in prefix.split("/")):
        raise ValueError(f"prefix: expected segments of letters, digits, '.', '_' and '-' "
                         f"separated by '/', got {value!r}")
    return prefix
