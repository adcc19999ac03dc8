"""Photos: an untrusted upload in, re-encoded WebP variants out (DESIGN.md section 9).

Bytes in, bytes out, no I/O: the web layer runs `process` off its event loop. Nothing of
the upload survives but its pixels: the type is sniffed from the bytes (and must be the
declared one), the size is read from the header and refused before any pixel is decoded,
EXIF orientation is applied, then every variant is a fresh image encoded without EXIF, XMP
or ICC (a phone writes its GPS position into every photo it takes).
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import pillow_heif  # type: ignore[import-untyped]  # ships no py.typed (no stubs either)
from PIL import Image, ImageCms, ImageFile, ImageOps

from rules.errors import ApiError, InvalidInput, PayloadTooLarge
from rules.polyglot import payload_kind
from schemas import limits

__all__ = ["ProcessedImage", "Variant", "declared_type", "draft_size", "media_id", "process",
           "sniff", "variant_widths"]

# Pillow's own bomb guard, for any code path that opens an image without `process`'s
# header check: it warns above this many pixels and raises DecompressionBombError above
# twice as many. `process` refuses above MEDIA_PIXELS_MAX itself, before any decoding.
Image.MAX_IMAGE_PIXELS = limits.MEDIA_PIXELS_MAX

# HEIC/HEIF (what iPhones take photos in), through pillow-heif's Pillow plugin. Only the
# primary image is decoded: no thumbnails, depth maps or auxiliary images (less hostile
# input reaches libheif, and less memory), and on one thread: the caller's pool of
# workers is the bound on the cores photos take (services/image_pool.py).
pillow_heif.register_heif_opener()
pillow_heif.options.THUMBNAILS = False
pillow_heif.options.DEPTH_IMAGES = False
pillow_heif.options.AUX_IMAGES = False
pillow_heif.options.DECODE_THREADS = 1

# The declared Content-Type each signature must come with, and Pillow's name for the format
# (passed to Image.open so that no other decoder ever looks at the bytes).
_JPEG, _PNG, _WEBP, _HEIC = "image/jpeg", "image/png", "image/webp", "image/heic"
_PIL_FORMAT = {_JPEG: "JPEG", _PNG: "PNG", _WEBP: "WEBP", _HEIC: "HEIF"}
# Declared types that name the same bytes: phones send HEIC photos as either.
_SAME_TYPE = {"image/heif": _HEIC}
# ISO-BMFF `ftyp` brands of HEIF still images with HEVC inside (ISO/IEC 23008-12), the
# only kind libheif here decodes. `mif1`/`msf1` are generic (AVIF files list them too), so
# a file whose brands also say AVIF is not taken for HEIC.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm",
                          b"hevs", b"mif1", b"msf1", b"heif"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

# WebP quality 80 is where phone photos stop visibly improving at card sizes; method 4 is
# libwebp's default speed/size trade-off (6 is ~2x slower for ~3 % smaller files).
_WEBP_QUALITY = 80
_WEBP_METHOD = 4

_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True, slots=True)
class Variant:
    width: int
    height: int
    data: bytes  # WebP


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    """The variants narrowest first; `width`/`height` are the widest's."""

    variants: tuple[Variant, ...]

    @property
    def width(self) -> int:
        return self.variants[-1].width

    @property
    def height(self) -> int:
        return self.variants[-1].height

    @property
    def size_bytes(self) -> int:
        return sum(len(v.data) for v in self.variants)


def _unsupported(message: str, code: str = "unsupported_image_type") -> ApiError:
    return ApiError(message, code=code, status=415)


def _undecodable(message: str) -> InvalidInput:
    return InvalidInput(message, code="undecodable_image")


def sniff(data: bytes) -> str | None:
    """The image type the bytes' signature says, or None for anything but JPEG, PNG, WebP
    and HEIC."""
    if data.startswith(b"\xff\xd8\xff"):
        return _JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _WEBP
    if _is_heic(data):
        return _HEIC
    return None


def _is_heic(data: bytes) -> bool:
    """An ISO-BMFF file whose first box is `ftyp` naming a HEIF brand (major or compatible)."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    size = int.from_bytes(data[:4], "big")
    if size < 16 or size > min(len(data), 4096) or size % 4:
        return False
    brands = {data[8:12]} | {data[i:i + 4] for i in range(16, size, 4)}
    return bool(brands & _HEIC_BRANDS) and not brands & _AVIF_BRANDS


def variant_widths(width: int) -> tuple[int, ...]:
    """The widths stored for an image this wide: never wider than it (no upscaling) nor
    than MEDIA_WIDTH_MAX, narrowest first, the last one as wide as allowed."""
    top = min(width, limits.MEDIA_WIDTH_MAX)
    return (*(w for w in limits.MEDIA_WIDTHS if w < top), top)


def media_id(shop_id: str, image: ProcessedImage) -> str:
    """Content-addressed: the same shop's same pixels are one media (an upload retried after
    a lost answer stores nothing new); another shop's copy is its own media."""
    digest = hashlib.sha256(shop_id.encode() + b"\0" + image.variants[-1].data)
    return "m_" + digest.hexdigest()[:32]


def declared_type(content_type: str) -> str:
    """The accepted image type a Content-Type header names (parameters and case aside), or
    415 `unsupported_image_type`: checked before an upload's body is even read."""
    declared = content_type.split(";", 1)[0].strip().lower()
    if declared not in limits.MEDIA_TYPES:
        raise _unsupported(f"Content-Type must be one of {', '.join(limits.MEDIA_TYPES)}")
    return _SAME_TYPE.get(declared, declared)


# A JPEG cannot hold more pixels per byte than this: even one flat colour takes ~0.012
# byte per pixel (a 36 MP grey frame is 420 KB at any quality); 0.002 is six times below.
_JPEG_PIXELS_PER_BYTE_MAX = 500

_PAYLOADS = {"markup": "web page or script markup", "pdf": "a PDF document",
             "zip": "a ZIP archive"}


def process(data: bytes, content_type: str) -> ProcessedImage:
    """Check, decode, orient, strip and resize an upload; raise an ApiError the API answers
    as is: 413 `media_too_large`, 415 `unsupported_image_type` / `image_type_mismatch`,
    422 `too_many_pixels` / `undecodable_image` / `polyglot_image`."""
    if len(data) > limits.MEDIA_UPLOAD_MAX_BYTES:
        raise PayloadTooLarge(f"A photo is at most {limits.MEDIA_UPLOAD_MAX_BYTES} bytes",
                              code="media_too_large")
    declared = declared_type(content_type)
    sniffed = sniff(data)
    if sniffed is None:
        raise _unsupported("The bytes are not a JPEG, PNG, WebP or HEIC image")
    if sniffed != declared:
        # Also what refuses a polyglot sent under a type its first bytes do not claim.
        raise _unsupported(f"Declared {declared} but the bytes are {sniffed}",
                           code="image_type_mismatch")
    hidden = payload_kind(data)
    if hidden is not None:
        raise InvalidInput(f"The image also holds {_PAYLOADS[hidden]}: save the photo again "
                           "from the camera or gallery", code="polyglot_image")
    try:
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[sniffed]]) as img:
            if img.format == "JPEG" and len(data) * _JPEG_PIXELS_PER_BYTE_MAX < (
                    img.width * img.height):
                # libjpeg takes missing scan data as a warning and paints it grey: 633
                # bytes claiming 6000 x 6000 cost a second of decoding (cold attack).
                raise _undecodable("The photo is incomplete")
            return _process_open(img)
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's guard, in Image.open, fires before the header check of _process_open:
        # its error above 2x the cap, its warning above the cap where warnings are errors.
        raise _too_many_pixels() from e
    except Exception as e:
        # Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error and more
        # on hostile input: every one of them means "not a decodable image".
        # The decoder's own words stay out of the answer (they name internals).
        raise _undecodable("Not a decodable image") from e


def _too_many_pixels() -> InvalidInput:
    return InvalidInput(f"A photo has at most {limits.MEDIA_PIXELS_MAX} pixels",
                        code="too_many_pixels")


_ORIENTATION = 0x0112
# EXIF orientations that turn the stored frame a quarter: its height is the photo's width.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


def draft_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The least size (stored frame, as Image.draft takes it) a JPEG may be decoded at so
    that, once upright, it is still as wide as its widest variant."""
    upright_width = height if orientation in _QUARTER_TURNS else width
    scale = min(upright_width, limits.MEDIA_WIDTH_MAX) / upright_width
    return math.ceil(width * scale), math.ceil(height * scale)


def _process_open(img: ImageFile.ImageFile) -> ProcessedImage:
    width, height = img.size  # from the header: nothing decoded yet
    if width < 1 or height < 1:
        raise _undecodable("The image has no pixels")
    if width * height > limits.MEDIA_PIXELS_MAX:
        raise _too_many_pixels()
    if max(width, height) > limits.MEDIA_ASPECT_MAX * min(width, height):
        # From the header too: refused before seconds of decoding, not after.
        raise InvalidInput(f"A photo's long side is at most {limits.MEDIA_ASPECT_MAX} times "
                           "its short side", code="unsupported_aspect_ratio")
    if img.format == "JPEG":
        # Decode at 1/2, 1/4 or 1/8 scale when the photo, once upright, is still at least as
        # wide as its widest variant: a 12 MP landscape photo costs a quarter of the memory
        # and time.
        img.draft("RGB", draft_size(width, height, img.getexif().get(_ORIENTATION, 1)))
    img.load()  # a truncated file fails here (Pillow refuses truncated images by default)
    oriented = ImageOps.exif_transpose(img)
    rgb = _to_srgb(oriented)
    variants = []
    for w in variant_widths(rgb.width):
        h = max(1, round(rgb.height * w / rgb.width))
        resized = rgb if w == rgb.width else rgb.resize((w, h), Image.Resampling.LANCZOS)
        variants.append(Variant(width=w, height=h, data=_encode(resized)))
    return ProcessedImage(variants=tuple(variants))


def _to_srgb(img: Image.Image) -> Image.Image:
    """RGB or RGBA pixels in sRGB, as a new image that carries no metadata at all."""
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (
        img.mode == "P" and "transparency" in img.info)
    target = "RGBA" if has_alpha else "RGB"
    icc = img.info.get("icc_profile")
    out: Image.Image | None = None
    if icc and img.mode in ("RGB", "RGBA"):
        # A phone's Display P3 photo looks washed out when its profile is dropped: convert.
        # A profile littleCMS cannot read is dropped (the pixels are then taken as sRGB).
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out = ImageCms.profileToProfile(img, source, _SRGB, outputMode=img.mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            out = None
    if out is None:
        out = img.convert(target)
    elif out.mode != target:
        out = out.convert(target)
    # A new image from the bare pixels: whatever `info` (exif, xmp, icc_profile, comments)
    # the conversions carried over is gone, whatever the encoder would copy from it.
    clean = Image.new(out.mode, out.size)
    clean.paste(out)
    return clean


def _encode(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=_WEBP_QUALITY, method=_WEBP_METHOD, exif=b"", xmp=b"",
             icc_profile=b"")
    return buf.getvalue()
