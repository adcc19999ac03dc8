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
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageFile, ImageOps

from rules.errors import ApiError, InvalidInput, PayloadTooLarge
from rules.polyglot import payload_kind
from schemas import limits

__all__ = ["ProcessedImage", "Variant", "declared_type", "media_id", "process", "sniff",
           "variant_widths"]

# Pillow's own bomb guard, for any code path that opens an image without `process`'s
# header check: it warns above this many pixels and raises DecompressionBombError above
# twice as many. `process` refuses above MEDIA_PIXELS_MAX itself, before any decoding.
Image.MAX_IMAGE_PIXELS = limits.MEDIA_PIXELS_MAX

# The declared Content-Type each signature must come with, and Pillow's name for the format
# (passed to Image.open so that no other decoder ever looks at the bytes).
_JPEG, _PNG, _WEBP = "image/jpeg", "image/png", "image/webp"
_PIL_FORMAT = {_JPEG: "JPEG", _PNG: "PNG", _WEBP: "WEBP"}

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
    """The image type the bytes' signature says, or None for anything but JPEG/PNG/WebP."""
    if data.startswith(b"\xff\xd8\xff"):
        return _JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _WEBP
    return None


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
    return declared


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
        raise _unsupported("The bytes are not a JPEG, PNG or WebP image")
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
        # Decode at 1/2, 1/4 or 1/8 scale when even then both sides stay at least the
        # widest variant: a 12 MP phone photo costs a quarter of the memory and time.
        img.draft("RGB", (limits.MEDIA_WIDTH_MAX, limits.MEDIA_WIDTH_MAX))
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
