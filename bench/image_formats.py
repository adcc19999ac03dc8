"""Photos: WebP against AVIF, what a photo stores, what a page and a screen download.

    .venv/bin/python -m bench.image_formats [--seeds 2] [--camera 2] [--real JPEG ...]

The photos: the demo street's drawn scenes (streetfeed/demo_photos.py, 1200 x 900, as
JPEG q88 the way a phone uploads them), `--seeds` of each, and `--camera` "camera-like"
12 MP uploads (4032 x 3024 JPEG q90: a drawn scene scaled up with per-pixel sensor noise,
so the encoders meet fine detail a drawing lacks; real photos of real things have more
structure and less noise, so take them as an order of magnitude, not a forecast), and any
`--real` JPEG photos given (their bits per pixel say how far the others are from reality).

1. Formats. Every variant (rules.images.variant_widths) is encoded as the product does
   (WebP q80, method 4) and as AVIF (Pillow's libavif, speed 6, one thread as a pool
   child has) at the lowest quality of AVIF_QUALITIES whose PSNR against the same
   resized pixels is at least WebP's: "visually similar" as a number. Bytes per variant
   width and encode CPU per upload (all its variants), medians over the photos.
2. Storage: the product's own processing (rules.images.process, in this process, one
   thread) on each upload: stored bytes (all variants) and CPU per upload.
3. Egress: the bytes a passer-by's page and an in-shop screen download for photos, and
   what `media` adds to every post frame of the feed.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import msgspec
from PIL import Image, ImageChops, ImageStat

from rules import images
from schemas.media import MediaOut, MediaVariant
from streetfeed import demo_photos

AVIF_QUALITIES = (30, 40, 50, 55, 60, 65, 70, 80)
CAMERA_SIZE = (4032, 3024)


def _camera_like(scene: str, seed: int) -> bytes:
    img = demo_photos.draw(scene, seed).resize(CAMERA_SIZE, Image.Resampling.BICUBIC)
    rng = random.Random(seed)
    noise = Image.frombytes("L", CAMERA_SIZE, rng.randbytes(CAMERA_SIZE[0] * CAMERA_SIZE[1]))
    noise = noise.point(lambda v: v * 16 // 255)
    img = ImageChops.add(img, Image.merge("RGB", (noise, noise, noise)), 1.0, -8)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def uploads(seeds: int, camera: int) -> list[tuple[str, bytes]]:
    out = [(f"{scene}#{seed}", demo_photos.jpeg(demo_photos.draw(scene, seed)))
           for seed in range(seeds) for scene in demo_photos.SCENES]
    scenes = list(demo_photos.SCENES)
    out += [(f"camera:{scenes[i % len(scenes)]}", _camera_like(scenes[i % len(scenes)], i))
            for i in range(camera)]
    return out


def _psnr(a: Image.Image, b: Image.Image) -> float:
    rms = ImageStat.Stat(ImageChops.difference(a, b)).rms
    mse = sum(r * r for r in rms) / len(rms)
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)


def _encode(img: Image.Image, fmt: str, quality: int) -> tuple[bytes, float]:
    buf = io.BytesIO()
    started = time.process_time()
    if fmt == "WEBP":
        img.save(buf, "WEBP", quality=quality, method=images._WEBP_METHOD)
    else:
        img.save(buf, "AVIF", quality=quality, speed=6, max_threads=1)
    return buf.getvalue(), time.process_time() - started


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def _variants(data: bytes) -> list[Image.Image]:
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (1600, 1600))
        rgb = img.convert("RGB")
    return [rgb if w == rgb.width else
            rgb.resize((w, max(1, round(rgb.height * w / rgb.width))), Image.Resampling.LANCZOS)
            for w in images.variant_widths(rgb.width)]


def formats(photos: Iterable[tuple[str, bytes]]) -> None:
    webp_bytes: dict[int, list[int]] = defaultdict(list)
    avif_bytes: dict[int, list[int]] = defaultdict(list)
    webp_cpu, avif_cpu, chosen, psnr_w, psnr_a = [], [], [], [], []
    for _, data in photos:
        variants = _variants(data)
        widest = variants[-1]
        w_data, _ = _encode(widest, "WEBP", images._WEBP_QUALITY)
        target = _psnr(widest, _decoded(w_data))
        quality = AVIF_QUALITIES[-1]
        for q in AVIF_QUALITIES:
            a_data, _ = _encode(widest, "AVIF", q)
            if _psnr(widest, _decoded(a_data)) >= target:
                quality = q
                break
        chosen.append(quality)
        cpu_w = cpu_a = 0.0
        for v in variants:
            wd, tw = _encode(v, "WEBP", images._WEBP_QUALITY)
            ad, ta = _encode(v, "AVIF", quality)
            cpu_w, cpu_a = cpu_w + tw, cpu_a + ta
            webp_bytes[v.width if v is not widest else 0].append(len(wd))
            avif_bytes[v.width if v is not widest else 0].append(len(ad))
            if v is widest:
                psnr_w.append(_psnr(v, _decoded(wd)))
                psnr_a.append(_psnr(v, _decoded(ad)))
        webp_cpu.append(cpu_w)
        avif_cpu.append(cpu_a)
    print("\n#### WebP q80 against AVIF at the same PSNR (medians over the photos)\n")
    print("| variant | WebP bytes | AVIF bytes | AVIF / WebP |")
    print("|---|---|---|---|")
    for width in sorted(webp_bytes, key=lambda w: w or 10**6):
        w, a = statistics.median(webp_bytes[width]), statistics.median(avif_bytes[width])
        name = f"{width} px" if width else "widest (the upload's width, at most 1600)"
        print(f"| {name} | {w:,.0f} | {a:,.0f} | {a / w:.2f} |")
    print(f"| encode CPU per upload, all variants | {statistics.median(webp_cpu) * 1000:.0f} ms"
          f" | {statistics.median(avif_cpu) * 1000:.0f} ms"
          f" | {statistics.median(avif_cpu) / statistics.median(webp_cpu):.1f} |")
    print(f"| PSNR of the widest, dB | {statistics.median(psnr_w):.1f} "
          f"| {statistics.median(psnr_a):.1f} | |")
    print(f"\nAVIF quality chosen per photo (lowest of {AVIF_QUALITIES} reaching WebP's "
          f"PSNR): median {statistics.median(chosen):g}, range {min(chosen)}-{max(chosen)}.")


def _kind(name: str) -> str:
    return name.split(":", 1)[0] if ":" in name else "drawn"


def storage(photos: list[tuple[str, bytes]]) -> dict[str, dict[int, float]]:
    rows: dict[str, list[tuple[int, float, dict[int, int]]]] = defaultdict(list)
    bpp: dict[str, list[float]] = defaultdict(list)
    for name, data in photos:
        started = time.process_time()
        out = images.process(data, "image/jpeg")
        cpu = time.process_time() - started
        by_width = {v.width: len(v.data) for v in out.variants}
        rows[_kind(name)].append((out.size_bytes, cpu, by_width))
        widest = out.variants[-1]
        bpp[_kind(name)].append(len(widest.data) * 8 / (widest.width * widest.height))
    print("\n#### What an upload stores and costs (rules.images.process, one thread)\n")
    print("| photos | upload (JPEG) | stored, all variants: median [min-max] "
          "| per variant: 400 / 800 / widest | a post with 4 photos | CPU per upload "
          "| bits per pixel, widest |")
    print("|---|---|---|---|---|---|---|")
    sizes = {name: len(data) for name, data in photos}
    medians: dict[str, dict[int, float]] = {}
    labels = {"drawn": "drawn, 1200 x 900", "camera": "camera-like, 12 MP", "real": "real"}
    for kind, entries in rows.items():
        stored = [s for s, _, _ in entries]
        upload = statistics.median(sizes[n] for n in sizes if _kind(n) == kind)
        per: dict[int, list[int]] = defaultdict(list)
        for _, _, by_width in entries:
            for i, (_, b) in enumerate(sorted(by_width.items())):
                per[i].append(b)
        medians[kind] = {i: statistics.median(v) for i, v in per.items()}
        print(f"| {labels[kind]} ({len(entries)}) | {upload / 1024:,.0f} KiB "
              f"| {statistics.median(stored) / 1024:,.0f} KiB [{min(stored) / 1024:,.0f}-"
              f"{max(stored) / 1024:,.0f}] "
              f"| {' / '.join(f'{medians[kind][i] / 1024:,.0f}' for i in sorted(per))} KiB "
              f"| {4 * statistics.median(stored) / 1024:,.0f} KiB "
              f"| {statistics.median(c for _, c, _ in entries) * 1000:,.0f} ms "
              f"| {statistics.median(bpp[kind]):.2f} |")
    return medians


def egress(medians: dict[str, dict[int, float]]) -> None:
    camera = medians.get("camera") or medians["drawn"]
    v400, v800, v1600 = camera[0], camera[1], camera[2] if 2 in camera else camera[1]
    print("\n#### Egress (camera-like photos' variant sizes; decimal kB)\n")
    print("| who | what loads | bytes |")
    print("|---|---|---|")
    for dpr, size, label in ((1, v400, "400"), (2, v800, "800"), (3, v1600, "1600")):
        print(f"| phone at DPR {dpr}, card ~360 CSS px wide (`{label}` variant) | first screen "
              f"of 3 cards with a photo / 20 cards scrolled | {3 * size / 1000:,.0f} kB / "
              f"{20 * size / 1000:,.0f} kB |")
    print(f"| in-shop screen at 1080p, photos shown large (`1600` variant) | a page of 4 "
          f"posts' first photos / all 4 photos of 4 posts | {4 * v1600 / 1000:,.0f} kB / "
          f"{16 * v1600 / 1000:,.0f} kB |")
    one = MediaOut(id="m_" + "0" * 32, url="/media/m_" + "0" * 32 + "/1600.webp", width=1600,
                   height=1200, variants=[MediaVariant(url=f"/media/m_{'0' * 32}/{w}.webp",
                                                       width=w, height=w * 3 // 4)
                                          for w in (400, 800, 1600)])
    per_photo = len(msgspec.json.encode([one])) - 2
    print(f"| every socket a post reaches | `media` in its frame, per photo / with 4 photos "
          f"| {per_photo} B / {len(msgspec.json.encode([one] * 4))} B |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="drawn photos per scene")
    parser.add_argument("--camera", type=int, default=2, help="camera-like 12 MP uploads")
    parser.add_argument("--real", nargs="*", default=[], help="real JPEG photos to add")
    parser.add_argument("--no-formats", action="store_true", help="skip the WebP/AVIF part")
    args = parser.parse_args()
    photos = uploads(args.seeds, args.camera)
    real = [(f"real:{path}", Path(path).read_bytes()) for path in args.real]
    print(f"{len(photos)} uploads ({args.seeds} per drawn scene, {args.camera} camera-like)"
          f" and {len(real)} real")
    if not args.no_formats:
        formats(photos)
    egress(storage(photos + real))


if __name__ == "__main__":
    main()
