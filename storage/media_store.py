"""The media store this deployment uses (STREETFEED_MEDIA_URL; docs/deploy.md "Photos")."""

from __future__ import annotations

from runtime.settings import Settings
from storage.media import FileMediaStore, MediaStore
from storage.media_s3 import S3_UNAVAILABLE, S3MediaStore

__all__ = ["MEDIA_UNAVAILABLE", "media_store_for"]

# Errors of a store that is down, whichever store it is (the data dir's are a server fault).
MEDIA_UNAVAILABLE: tuple[type[Exception], ...] = S3_UNAVAILABLE


def media_store_for(settings: Settings) -> MediaStore:
    """The data dir's media/ by default; the S3-compatible bucket when one is configured."""
    if settings.media_bucket is None:
        return FileMediaStore(settings.data_dir / "media")
    return S3MediaStore(settings.media_bucket)
