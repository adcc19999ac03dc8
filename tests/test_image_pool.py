"""Photos are processed in child processes (services/image_pool.py, issue 15).

Real child processes, real signals: a child killed mid-way, a child whose address space is
too small for the photo, the pool started only by the first photo and stopped with the app.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image
from redis.asyncio import Redis

from rules.errors import ApiError
from runtime.settings import Settings
from services.image_pool import CHILD_ADDRESS_SPACE_BYTES, ImagePool
from tests.helpers import RunningServer, add_shop, wait_for, web_server

STREET = (44.8370, -0.5735)


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    """A photo-sized PNG that compresses to almost nothing (a gradient in every channel)."""
    g = Image.linear_gradient("L").resize(size)
    bands = [g, g.transpose(Image.Transpose.FLIP_LEFT_RIGHT), g, g][: len(mode)]
    buf = io.BytesIO()
    Image.merge(mode, bands).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _pool(web: RunningServer) -> ImagePool:
    pool = web.state.media_library.processor
    assert isinstance(pool, ImagePool)
    return pool


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


def _vm_peak_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmPeak:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmPeak")


async def test_uploads_go_through_child_processes_started_on_the_first_photo(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        pool = _pool(web)
        assert pool.workers == settings.media_workers
        assert pool.child_pids() == []  # a server that sees no photo starts no process
        response = await http.post(f"/api/v1/shops/{shop.id}/media", content=_png((900, 600)),
                                   headers={"Authorization": f"Bearer {shop.token}",
                                            "Content-Type": "image/png"})
        assert response.status_code == 201, response.text
        assert response.json()["width"] == 900
        children = pool.child_pids()
        assert children and os.getpid() not in children
        assert all(os.getpriority(os.PRIO_PROCESS, pid)
                   > os.getpriority(os.PRIO_PROCESS, 0) for pid in children)
    # Stopped with the app.
    await wait_for(lambda: not any(_alive(pid) for pid in children), 10, "children to exit")


async def test_a_child_killed_mid_way_refuses_that_upload_and_not_the_next(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Fromager", *STREET)
    url = f"/api/v1/shops/{shop.id}/media"
    headers = {"Authorization": f"Bearer {shop.token}", "Content-Type": "image/png"}
    big = _png((8000, 5000))  # seconds of processing: the kill lands while it runs
    async with web_server(settings) as web, \
            httpx.AsyncClient(base_url=web.http, timeout=60) as http:
        pool = _pool(web)
        upload = asyncio.create_task(http.post(url, content=big, headers=headers))
        await wait_for(lambda: bool(pool.child_pids()), 20, "a child to start")
        killed = pool.child_pids()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)  # as a decoder crash or the OOM killer would
        refused = await upload
        assert (refused.status_code, refused.json()["error"]["code"]) == (
            422, "undecodable_image"), refused.text
        after = await http.post(url, content=_png((640, 480)), headers=headers)
        assert after.status_code == 201, after.text
        assert pool.child_pids() and not set(pool.child_pids()) & set(killed)


async def test_40_mp_photos_pass_under_the_address_space_cap() -> None:
    # The 40 MP PNG is the heaviest path (no reduced-scale decoding as JPEG has); RGBA
    # frames are the largest. The child's peak stays well under the cap.
    pool = ImagePool(1)
    try:
        for mode in ("RGB", "RGBA"):
            out = await pool.process(_png((8000, 5000), mode), "image/png")
            assert (out.width, out.height) == (1600, 1000)
            (pid,) = pool.child_pids()
            peak = _vm_peak_bytes(pid)
            assert peak < CHILD_ADDRESS_SPACE_BYTES / 2, peak
    finally:
        await pool.close()


async def test_a_runaway_decoder_fails_in_the_child_not_in_the_web_process() -> None:
    # A cap too small for a 40 MP frame stands in for a decoder that allocates without end:
    # the allocation fails in the child, the upload is refused, and the child lives on.
    pool = ImagePool(1, address_space=400 * 1024**2)
    try:
        with pytest.raises(ApiError) as exc:
            await pool.process(_png((8000, 5000)), "image/png")
        assert (exc.value.status, exc.value.code) == (422, "undecodable_image")
        (pid,) = pool.child_pids()
        out = await pool.process(_png((640, 480)), "image/png")
        assert out.width == 640 and pool.child_pids() == [pid]
    finally:
        await pool.close()


_REPO = Path(__file__).resolve().parent.parent
_HOLDER = """
import asyncio, io, os, sys
from PIL import Image
from services.image_pool import ImagePool

async def main() -> None:
    pool = ImagePool(2)
    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, "PNG")
    await asyncio.gather(*(pool.process(buf.getvalue(), "image/png") for _ in range(4)))
    with open(sys.argv[1] + ".tmp", "w") as out:
        out.write(" ".join(map(str, pool.child_pids())))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    await asyncio.Event().wait()

if __name__ == "__main__":
    asyncio.run(main())
"""


def _written(path: Path) -> bool:
    return path.exists()


def _pids(path: Path) -> list[int]:
    return [int(pid) for pid in path.read_text().split()]


async def test_children_die_with_a_web_process_killed_outright(tmp_path: Path) -> None:
    # kill -9 of a web process (or of `up`) cannot shut its pool down: its children, and
    # the resource tracker whose pipe they hold, lived on (~70 MB each; cold attack).
    script, pids = tmp_path / "holder.py", tmp_path / "pids"
    script.write_text(_HOLDER)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(pids), cwd=_REPO)
    await wait_for(lambda: _written(pids), 60, "the holder's pool to start")
    children = _pids(pids)
    assert children and all(_alive(pid) for pid in children)
    holder.kill()
    await holder.wait()
    await wait_for(lambda: not any(_alive(pid) for pid in children), 10,
                   "the pool's children to end with their parent")


async def test_a_child_killed_while_idle_does_not_refuse_the_next_photo(
        redis: Redis, settings: Settings) -> None:
    # The next upload after an idle child's death was refused "not a decodable image"
    # (the pool was already broken when it was handed over; cold try): a new pool takes it.
    shop = await add_shop(redis, settings, "Fromager", *STREET)
    url = f"/api/v1/shops/{shop.id}/media"
    headers = {"Authorization": f"Bearer {shop.token}", "Content-Type": "image/png"}
    async with web_server(settings) as web, \
            httpx.AsyncClient(base_url=web.http, timeout=60) as http:
        pool = _pool(web)
        assert (await http.post(url, content=_png((640, 480)), headers=headers)).status_code \
            == 201
        killed = pool.child_pids()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: not any(_alive(pid) for pid in killed), 10, "the children to die")
        after = await http.post(url, content=_png((320, 240), "RGBA"), headers=headers)
        assert after.status_code == 201, after.text
        assert pool.child_pids() and not set(pool.child_pids()) & set(killed)
