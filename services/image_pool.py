"""Photos are processed in child processes, never on the event loop that serves sockets.

`rules.images.process` (decode, orient, strip, resize, encode) takes up to a couple of CPU
seconds on a 40 MP upload and is fed hostile bytes. It runs in a `ProcessPoolExecutor`:
- off the web process's loop and off its GIL, so sockets keep being served;
- with its children started by `spawn` (the web process has threads and a running loop,
  which `fork` would copy half-way), lazily on the first upload: a process that never
  sees a photo starts none;
- each child at a lower CPU priority (the sockets' loop wins a contended core) and with
  its address space capped (`CHILD_ADDRESS_SPACE_BYTES`), so that a decoder that runs away
  with memory fails in the child (MemoryError: 422) instead of growing the web process;
- a child that dies (a decoder crash, the kernel's OOM killer) breaks the executor: the
  uploads it held are answered 422 `undecodable_image` and the next one gets a new pool.
`workers` is at once the number of children and of uploads processed at once (each may
hold a few decoded 40 MP frames); more wait their turn, their bodies already read.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from rules import images
from rules.errors import ApiError, InvalidInput
from rules.images import ProcessedImage
from runtime.processes import die_with_parent

__all__ = ["CHILD_ADDRESS_SPACE_BYTES", "ImagePool"]

log = logging.getLogger("streetfeed.images")

# A child's whole virtual address space: the interpreter, Pillow and libheif (~70 MB
# mapped before any photo), the upload, and the frames of a 40 MP photo. Measured peaks
# (VmPeak) on 40 MP uploads: JPEG 0.24 GB (decoded at half scale), PNG 0.70 GB, RGBA PNG
# 0.74 GB, HEIC 0.78 GB. 2 GiB leaves room for a library's next version and still stops a
# runaway decoder long before it hurts the host (tests/test_image_pool.py checks both).
CHILD_ADDRESS_SPACE_BYTES = 2 * 1024**3
# Photos wait for the sockets: a child's nice value is raised by this much.
_CHILD_NICENESS = 5


def _child_init(address_space: int, parent: int) -> None:
    # A web process killed with SIGKILL cannot shut its pool down: its children (and the
    # multiprocessing resource tracker, whose pipe they hold) would live on, ~70 MB each.
    die_with_parent(parent)
    # Ctrl-C in a terminal reaches the whole process group: the parent shuts the pool down,
    # children need not print a KeyboardInterrupt each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(_CHILD_NICENESS)
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))


def _process_in_child(data: bytes, content_type: str) -> ProcessedImage | ApiError:
    # A refusal is returned, not raised: the executor keeps a raised exception, and its
    # traceback's frames with the failed photo's decoded frames, until the child's next
    # error, where the next photo would run short of address space.
    try:
        return images.process(data, content_type)
    except ApiError as exc:
        exc.__cause__ = exc.__context__ = None
        return exc.with_traceback(None)


class ImagePool:
    """`await pool.process(body, content_type)`: `rules.images.process` in a child process,
    raising the same `ApiError`s; at most `workers` at once."""

    def __init__(self, workers: int, *,
                 address_space: int = CHILD_ADDRESS_SPACE_BYTES) -> None:
        if workers < 1:
            raise ValueError("an image pool needs at least one worker")
        self.workers = workers
        self._address_space = address_space
        self._slots = asyncio.Semaphore(workers)
        self._executor: ProcessPoolExecutor | None = None

    def _current(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_init, initargs=(self._address_space, os.getpid()))
        return self._executor

    def child_pids(self) -> list[int]:
        """The children alive now (none before the first photo)."""
        executor = self._executor
        # The executor exposes its children only as this attribute (Python 3.11-3.13).
        processes = getattr(executor, "_processes", None) or {}
        return [pid for pid, proc in dict(processes).items() if proc.is_alive()]

    async def process(self, data: bytes, content_type: str) -> ProcessedImage:
        async with self._slots:
            executor = self._current()
            try:
                job = executor.submit(_process_in_child, data, content_type)
            except BrokenProcessPool as exc:
                # A child died while idle (killed, the OOM killer): the pool is broken
                # before this photo was even handed over. Not its fault: a new pool takes it.
                self._discard(executor, exc)
                executor = self._current()
                job = executor.submit(_process_in_child, data, content_type)
            try:
                result = await asyncio.wrap_future(job)
            except BrokenProcessPool as exc:
                # Which upload killed the child cannot be told apart from those it held at
                # the same time: each is refused; the pool is rebuilt for the next.
                self._discard(executor, exc)
                raise InvalidInput("Not a decodable image", code="undecodable_image") from exc
        if isinstance(result, ApiError):
            raise result
        return result

    def _discard(self, executor: ProcessPoolExecutor, exc: BaseException) -> None:
        if self._executor is executor:
            self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)
            log.warning("a photo-processing child died (%s); starting new ones", exc)

    async def close(self) -> None:
        """Stop the children (the uploads still queued are cancelled, those being processed
        finish), without blocking the loop meanwhile."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
