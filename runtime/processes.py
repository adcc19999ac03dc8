"""Child processes that end with the process that started them, whatever killed it.

A `streetfeed up` killed with SIGKILL cannot stop its children: left alone they
would keep the port and the data directory's server (a restart would then run
old code beside new). Linux's parent-death signal hands them SIGTERM instead,
which they handle as a normal stop.
"""

from __future__ import annotations

import ctypes
import os
import signal

__all__ = ["PARENT_ENV", "die_with_parent", "die_with_parent_from_env"]

_PR_SET_PDEATHSIG = 1
# Set by a parent for a `streetfeed` child: the child asks for the signal itself (no
# preexec_fn, which is unsafe once threads run).
PARENT_ENV = "STREETFEED_PARENT_PID"


def die_with_parent(parent: int) -> None:
    """SIGTERM to this process once `parent` is gone (Linux; elsewhere nothing)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def die_with_parent_from_env() -> None:
    """In a `streetfeed` child: honour PARENT_ENV (and do not pass it on)."""
    parent = os.environ.pop(PARENT_ENV, None)
    if parent is not None and parent.isdigit():
        die_with_parent(int(parent))
