"""Photos, the pure part (rules/images.py, issue 15): what an upload becomes, what is refused.

Every input is made here with Pillow (EXIF with a GPS position, an EXIF orientation) or by
hand (a PNG header claiming 20,000 x 20,000 pixels); every output is read back with Pillow.
"""

from __future__ import annotations

import io
import pickle
import resource
import struct
import time
import zipfile
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms

from rules import images
from rules.errors import ApiError
from rules.polyglot import payload_kind
from schemas import limits

GPS_LAT = (48.0, 51.0, 24.13)


def _jpeg_with_gps(size: tuple[int, int] = (1200, 900), orientation: int | None = None) -> bytes:
    img = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "StreetfeedPhone"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LAT
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 21.0, 7.89)
    buf = io.BytesIO()
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
           b'02/22-rdf-syntax-ns#"><rdf:Description exif:GPSLatitude="48,51.2413N" xmlns:'
           b'exif="http://ns.adobe.com/exif/1.0/"/></rdf:RDF></x:xmpmeta>')
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img.save(buf, "JPEG", exif=exif, xmp=xmp, icc_profile=icc, quality=90)
    return buf.getvalue()


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (10, 20, 30, 128)[: len(mode)]).save(buf, "PNG")
    return buf.getvalue()


def _pixel(img: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = img.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def _code(exc: pytest.ExceptionInfo[ApiError]) -> tuple[int, str]:
    return exc.value.status, exc.value.code


def test_gps_exif_xmp_and_icc_do_not_survive() -> None:
    upload = _jpeg_with_gps()
    with Image.open(io.BytesIO(upload)) as src:  # the test's input really carries them
        assert src.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude]
        assert "xmp" in src.info and "icc_profile" in src.info
    out = images.process(upload, "image/jpeg")
    assert [v.width for v in out.variants] == [400, 800, 1200]
    for v in out.variants:
        assert images.sniff(v.data) == "image/webp"
        with Image.open(io.BytesIO(v.data)) as img:
            assert img.format == "WEBP"
            assert (img.width, img.height) == (v.width, v.width * 3 // 4)
            assert not img.getexif()
            assert not {"exif", "xmp", "icc_profile"} & set(img.info)
        # No EXIF, XMP or ICCP chunk in the RIFF container, nor the camera's make.
        for marker in (b"EXIF", b"XMP ", b"ICCP", b"StreetfeedPhone", b"GPS", b"xmpmeta"):
            assert marker not in v.data


def test_exif_orientation_is_applied() -> None:
    # Orientation 6: the sensor's rows are the picture's columns (phone held upright).
    img = Image.new("RGB", (600, 300), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 60, 60))  # red in the sensor's top-left corner
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    out = images.process(buf.getvalue(), "image/jpeg")
    assert (out.width, out.height) == (300, 600)
    with Image.open(io.BytesIO(out.variants[-1].data)) as shown:
        assert shown.size == (300, 600)
        rgb = shown.convert("RGB")
        # Rotated 90 degrees clockwise for display: the red corner is now top-right.
        r, _, b = _pixel(rgb, (290, 10))
        assert r > 200 and b < 60
        r, _, b = _pixel(rgb, (10, 10))
        assert b > 200 and r < 60


def test_widths_never_upscale_and_stop_at_1600() -> None:
    assert images.variant_widths(300) == (300,)
    assert images.variant_widths(400) == (400,)
    assert images.variant_widths(500) == (400, 500)
    assert images.variant_widths(1600) == (400, 800, 1600)
    assert images.variant_widths(6000) == (400, 800, 1600)
    out = images.process(_png((3000, 2000)), "image/png")
    assert [(v.width, v.height) for v in out.variants] == [(400, 267), (800, 533), (1600, 1067)]
    small = images.process(_png((120, 80)), "image/png")
    assert [(v.width, v.height) for v in small.variants] == [(120, 80)]
    assert small.size_bytes == len(small.variants[0].data)


def test_transparency_is_kept() -> None:
    out = images.process(_png((50, 50), "RGBA"), "image/png")
    with Image.open(io.BytesIO(out.variants[-1].data)) as img:
        assert img.mode == "RGBA"
        assert _pixel(img, (5, 5))[3] == 128


def test_webp_upload_is_reencoded() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (900, 600), (1, 2, 3)).save(buf, "WEBP", lossless=True)
    out = images.process(buf.getvalue(), "image/webp")
    assert [v.width for v in out.variants] == [400, 800, 900]
    assert out.variants[-1].data != buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with a few bytes of body."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def test_decompression_bomb_refused_from_its_header() -> None:
    bomb = _png_header_only(20_000, 20_000)  # 400 MP: 1.2 GB once decoded as RGB
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(ApiError) as exc:
        images.process(bomb, "image/png")
    assert time.monotonic() - started < 1.0
    # ru_maxrss is in KiB on Linux: the high-water mark moved by less than 50 MB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50_000
    assert _code(exc) == (422, "too_many_pixels")
    # Just over the cap is refused too, and Pillow's own guard is set for other callers.
    with pytest.raises(ApiError) as exc:
        images.process(_png_header_only(8000, 5001), "image/png")
    assert _code(exc) == (422, "too_many_pixels")
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bomb))


def test_other_types_and_mismatches_refused() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buf, "GIF")
    gif = buf.getvalue()
    jpeg = _jpeg_with_gps((40, 30))
    cases = [
        (gif, "image/gif", (415, "unsupported_image_type")),
        (gif, "image/png", (415, "unsupported_image_type")),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png",
         (415, "unsupported_image_type")),
        (jpeg, "image/png", (415, "image_type_mismatch")),
        (jpeg, "image/webp", (415, "image_type_mismatch")),
        (jpeg, "application/octet-stream", (415, "unsupported_image_type")),
        (b"", "image/jpeg", (415, "unsupported_image_type")),
    ]
    for data, declared, expected in cases:
        with pytest.raises(ApiError) as exc:
            images.process(data, declared)
        assert _code(exc) == expected, declared
    # The declared type's parameters and case do not matter.
    assert images.process(jpeg, "Image/JPEG; charset=binary").width == 40


def test_truncated_and_garbage_refused() -> None:
    jpeg = _jpeg_with_gps((800, 600))
    png = _png((300, 300))
    for data, declared in ((jpeg[: len(jpeg) // 2], "image/jpeg"),
                           (png[: len(png) - 30], "image/png"),
                           (b"\xff\xd8\xff" + b"\0" * 100, "image/jpeg"),
                           (b"RIFF\0\0\0\0WEBPVP8 garbage", "image/webp")):
        with pytest.raises(ApiError) as exc:
            images.process(data, declared)
        assert _code(exc) == (422, "undecodable_image"), data[:12]


def test_too_large_upload_refused_unread() -> None:
    with pytest.raises(ApiError) as exc:
        images.process(b"\xff\xd8\xff" + b"\0" * limits.MEDIA_UPLOAD_MAX_BYTES, "image/jpeg")
    assert _code(exc) == (413, "media_too_large")


def test_refusals_survive_a_process_pool() -> None:
    # The web layer may run `process` in another process: its errors cross as pickles.
    with pytest.raises(ApiError) as exc:
        images.process(b"GIF89a", "image/gif")
    again = pickle.loads(pickle.dumps(exc.value))
    assert (again.status, again.code, again.message) == (415, "unsupported_image_type",
                                                         exc.value.message)


def test_media_id_is_per_shop_content_address() -> None:
    out = images.process(_png((64, 64)), "image/png")
    same = images.process(_png((64, 64)), "image/png")
    a = images.media_id("boulangerie", out)
    assert a == images.media_id("boulangerie", same)
    assert a != images.media_id("fromagerie", out)
    assert a.startswith("m_") and len(a) == 34


def test_strips_too_long_for_a_card_are_refused_from_their_header() -> None:
    """A 1080 x 20,000 screenshot once took 5.6 s to decode, then failed in the WebP encoder
    (16,383 px a side at most) with its internal message in the answer."""
    for size in ((1080, 20_000), (1, 60_000), (20_000, 1080)):
        # A header with no pixel data: decoding it would fail as undecodable_image.
        with pytest.raises(ApiError) as exc:
            images.process(_png_header_only(*size), "image/png")
        assert _code(exc) == (422, "unsupported_aspect_ratio"), size
    tall = images.process(_png((400, 1600)), "image/png")  # 4:1 is still a photo
    assert [(v.width, v.height) for v in tall.variants] == [(400, 1600)]


def test_an_undecodable_image_says_so_without_the_decoder_s_words() -> None:
    with pytest.raises(ApiError) as exc:
        images.process(b"\xff\xd8\xff", "image/jpeg")
    assert _code(exc) == (422, "undecodable_image")
    assert "0x" not in str(exc.value) and "BytesIO" not in str(exc.value)


def _heic_with_gps(size: tuple[int, int] = (320, 240)) -> bytes:
    """A HEIC as an iPhone sends it: HEVC in HEIF, EXIF with the GPS position, an XMP packet."""
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "StreetfeedPhone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LAT
    buf = io.BytesIO()
    img.save(buf, "HEIF", exif=exif.tobytes(), xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>',
             quality=60)
    return buf.getvalue()


def test_heic_is_welcome_and_leaves_nothing_but_pixels() -> None:
    upload = _heic_with_gps()
    assert images.sniff(upload) == "image/heic"
    with Image.open(io.BytesIO(upload)) as src:  # the test's input really carries them
        assert src.format == "HEIF"
        assert src.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude]
        assert "xmp" in src.info
    # Phones declare it as either name.
    for declared in ("image/heic", "image/heif", "Image/HEIC; charset=binary"):
        out = images.process(upload, declared)
        assert [(v.width, v.height) for v in out.variants] == [(320, 240)]
    data = out.variants[0].data
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "WEBP"
        assert not img.getexif() and not {"exif", "xmp", "icc_profile"} & set(img.info)
    for marker in (b"EXIF", b"XMP ", b"StreetfeedPhone", b"GPS", b"xmpmeta"):
        assert marker not in data


def test_heic_declared_as_another_type_and_avif_are_refused() -> None:
    heic = _heic_with_gps((64, 48))
    for declared in ("image/jpeg", "image/png", "image/webp"):
        with pytest.raises(ApiError) as exc:
            images.process(heic, declared)
        assert _code(exc) == (415, "image_type_mismatch"), declared
    with pytest.raises(ApiError) as exc:
        images.process(_jpeg_with_gps((40, 30)), "image/heic")
    assert _code(exc) == (415, "image_type_mismatch")
    # AVIF shares HEIF's container and its generic `mif1` brand: it is not taken for HEIC.
    avif = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(avif, "AVIF")
    assert b"mif1" in avif.getvalue()[:64] and images.sniff(avif.getvalue()) is None
    with pytest.raises(ApiError) as exc:
        images.process(avif.getvalue(), "image/heic")
    assert _code(exc) == (415, "unsupported_image_type")


def test_heic_bomb_refused_from_its_header() -> None:
    # A small HEIC (no padding, so no crop box), its `ispe` box (the image's declared size)
    # claiming more: refused by the header check, or by Pillow's own guard past twice the cap.
    heic = _heic_with_gps((128, 64))
    at = heic.index(b"ispe") + 8  # after the box's type, version and flags
    assert struct.unpack(">II", heic[at:at + 8]) == (128, 64)
    for claimed in ((8000, 5001), (20_000, 20_000)):
        bomb = heic[:at] + struct.pack(">II", *claimed) + heic[at + 8:]
        started = time.monotonic()
        with pytest.raises(ApiError) as exc:
            images.process(bomb, "image/heic")
        assert _code(exc) == (422, "too_many_pixels"), claimed
        assert time.monotonic() - started < 1.0


def test_a_12_mp_landscape_jpeg_is_decoded_at_half_scale() -> None:
    """A phone's 4032 x 3024 landscape photo was decoded whole (its 3,024 px side is under
    twice 1,600): now at half scale, still wider than the 1,600 px variant."""
    assert images.draft_size(4032, 3024, 1) == (1600, 1200)
    buf = io.BytesIO()
    Image.linear_gradient("L").resize((4032, 3024)).convert("RGB").save(buf, "JPEG")
    with Image.open(io.BytesIO(buf.getvalue())) as img:
        img.draft("RGB", images.draft_size(*img.size, 1))
        assert img.size == (2016, 1512)
    out = images.process(buf.getvalue(), "image/jpeg")
    assert [(v.width, v.height) for v in out.variants] == [(400, 300), (800, 600), (1600, 1200)]
    # Upright, a portrait photo stored as a landscape frame is 3,024 px wide: half of it
    # would be narrower than 1,600, so it is decoded whole.
    assert images.draft_size(4032, 3024, 6) == (2134, 1600)
    assert images.draft_size(1000, 800, 1) == (1000, 800)


def _zip(name: str, content: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(name, content)
    return buf.getvalue()


def _jpeg_with_comment(comment: bytes, size: tuple[int, int] = (400, 300)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(buf, "JPEG", comment=comment)
    return buf.getvalue()


def test_polyglots_are_refused_and_genuine_photos_are_not() -> None:
    """An image that is also a page, a script, a PDF or an archive is refused; the same
    image alone, and one with a phone's trailer (a motion photo's video), is accepted."""
    jpeg = _jpeg_with_gps((400, 300))
    png = _png((300, 200))
    hostile = [
        (_jpeg_with_comment(b"<script>fetch('/api/v1/session')</script>"), "image/jpeg"),
        (_jpeg_with_comment(b"<SVG onload=alert(1)>"), "image/jpeg"),
        (jpeg + b"<html><body>phish</body></html>", "image/jpeg"),
        (_jpeg_with_comment(b"%PDF-1.7 1 0 obj"), "image/jpeg"),
        (png + _zip("evil.class", b"\xca\xfe\xba\xbe"), "image/png"),  # a GIFAR-style JAR
        (jpeg + b"<?php system($_GET['c']); ?>", "image/jpeg"),
        (_jpeg_with_comment(b"javascript:alert(1)"), "image/jpeg"),
    ]
    for data, declared in hostile:
        with pytest.raises(ApiError) as exc:
            images.process(data, declared)
        assert _code(exc) == (422, "polyglot_image"), data[-40:]
        assert "fetch(" not in str(exc.value) and "system(" not in str(exc.value)  # not echoed
    # Pillow decodes the hostile JPEGs as images: only the check refuses them.
    Image.open(io.BytesIO(hostile[0][0])).load()

    motion_photo = jpeg + b"\0\0\0\x18ftypmp42" + bytes(range(256)) * 64
    for data, declared in ((jpeg, "image/jpeg"), (png, "image/png"),
                           (motion_photo, "image/jpeg"),
                           (_jpeg_with_comment(b"Pixel 9 Pro - HDR+"), "image/jpeg")):
        assert images.process(data, declared).width > 0


def test_genuine_photo_bytes_do_not_look_like_payloads() -> None:
    # Noise encodes to near-random bytes, as a real photo's compressed data: megabytes of
    # it hold no signature by chance.
    for seed in range(3):
        noise = Image.effect_noise((1600, 1200), 60 + seed).convert("RGB")
        for fmt, quality in (("JPEG", 92), ("PNG", None), ("WEBP", 90)):
            buf = io.BytesIO()
            noise.save(buf, fmt, **({} if quality is None else {"quality": quality}))
            assert payload_kind(buf.getvalue()) is None, (fmt, seed)


def test_a_jpeg_too_small_for_its_pixels_is_refused_before_decoding() -> None:
    # A 6000 x 6000 header with the scan data cut: libjpeg painted it grey for a second of
    # CPU (cold attack); a flat 36 MP JPEG, the smallest honest one, still passes.
    small = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(small, "JPEG")
    forged = bytearray(small.getvalue())
    at = forged.find(b"\xff\xc0")  # the frame header: its height and width, rewritten
    forged[at + 5:at + 9] = struct.pack(">HH", 6000, 6000)
    with pytest.raises(ApiError) as exc:
        images.process(bytes(forged), "image/jpeg")
    assert _code(exc) == (422, "undecodable_image")
    flat = io.BytesIO()
    Image.new("L", (6000, 6000), 0).save(flat, "JPEG", quality=10)
    assert images.process(flat.getvalue(), "image/jpeg").width == limits.MEDIA_WIDTH_MAX
