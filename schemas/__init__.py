"""Every wire and storage format, as msgspec Structs.

Public edges (HTTP bodies, WebSocket client messages) are decoded strictly
(`forbid_unknown_fields`); formats inside Redis streams are decoded tolerantly
and every field added later has a default, so old and new processes can share
a stream during a rolling deploy.
"""
