"""Measure an image file: size, type, perceptual hash, colour or greyscale.

Pure functions over bytes (Pillow + NumPy); no database. Oversized files and
decompression bombs are refused before the pixels are decoded.
"""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

# Chroma spread (Lab units) above which an image counts as colour. Greyscale and
# toned prints (sepia, cyanotype) have one hue everywhere: their chroma varies
# little around its mean even when the mean is far from grey.
COLOUR_SPREAD_THRESHOLD = 6.0

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "TIFF": "image/tiff", "WEBP": "image/webp",
               "GIF": "image/gif", "BMP": "image/bmp", "MPO": "image/jpeg", "JPEG2000": "image/jp2"}


class ImageRejected(ValueError):
    """The bytes are not an acceptable image; the message says why."""


@dataclass
class ImageInfo:
    media_type: str
    width: int
    height: int
    phash: str
    colourfulness: float
    chroma_mean: float
    chroma_spread: float
    is_colour: bool
    info: dict[str, Any] = field(default_factory=dict)


def use_pixel_limit(max_pixels: int) -> None:
    """Make Pillow's own decompression-bomb check follow ``ARHIVA_MAX_IMAGE_PIXELS`` in this
    process: every ``Image.open`` then warns above it and refuses above twice it, and arhiva's
    readers (``open_image`` here, ``colorization.imageio``) refuse above it. (Pillow's default,
    89,478,485 pixels, would otherwise refuse or warn about scans the setting allows.)"""
    Image.MAX_IMAGE_PIXELS = int(max_pixels)


def over_pixel_limit(max_pixels: int, *, size: tuple[int, int] | None = None, pixels: int | None = None) -> str:
    """The one way arhiva says an image is over ``ARHIVA_MAX_IMAGE_PIXELS``: its size, and the limit
    as set (Pillow's own refusal at twice the limit is told this way too)."""
    if size is not None:
        w, h = size
        what = f"{w:,}×{h:,} = {w * h:,} pixels"
    else:
        what = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
    return f"image is {what}, over the limit of {max_pixels:,} (ARHIVA_MAX_IMAGE_PIXELS; decompression-bomb guard)"


def bomb_pixels(exc: BaseException) -> int | None:
    """How many pixels Pillow's ``DecompressionBombError`` says the image has (its message is the
    only place it says so: "Image size (N pixels) exceeds limit of 2×limit pixels")."""
    m = re.search(r"\((\d+) pixels\)", str(exc))
    return int(m.group(1)) if m else None


def open_image(data: bytes, *, max_pixels: int, max_bytes: int | None = None,
               draft: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode, refusing oversized, truncated or unknown files.

    ``max_pixels`` is the one pixel limit (Pillow's own check follows it: ``use_pixel_limit``).
    ``draft``: a JPEG may be decoded at a reduced scale (DCT scaling; every byte is still
    read, so truncation is still caught); the full size is then in ``im.info["full_size"]``.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageRejected(f"file is {len(data):,} bytes, over the limit of {max_bytes:,}")
    if not data:
        raise ImageRejected("file is empty")
    use_pixel_limit(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked right below
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > max_pixels:
                raise ImageRejected(over_pixel_limit(max_pixels, size=(w, h)))
            im.info["full_size"] = (w, h)
            if draft and im.format == "JPEG" and im.mode in ("L", "RGB"):
                im.draft(im.mode, draft)
            im.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # over twice the limit
        raise ImageRejected(over_pixel_limit(max_pixels, pixels=bomb_pixels(exc))) from None
    except UnidentifiedImageError:
        head = data[:64].lstrip().lower()
        kind = "an HTML page" if head.startswith((b"<!doctype html", b"<html")) else "not an image"
        raise ImageRejected(f"file is {kind} (no image format recognised)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"image cannot be decoded ({exc}); truncated or corrupt?") from None
    return im


HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I", "F")
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def exif_orientation(im: Image.Image) -> int | None:
    try:
        value = im.getexif().get(0x0112)
    except Exception:  # broken EXIF must not sink the image
        return None
    return int(value) if value in _TRANSPOSE else None


def upright(im: Image.Image, orientation: int | None) -> Image.Image:
    """``im`` turned by an EXIF orientation (the image itself when there is nothing to turn:
    no copy, unlike ``ImageOps.exif_transpose``)."""
    return im.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else im


def shrink(im: Image.Image, max_side: int) -> Image.Image:
    """A new image at most ``max_side`` pixels a side, made without a full-size copy (reduced
    by a whole factor first; 16-bit and float images by striding); ``im`` when already small."""
    w, h = im.size
    if max(w, h) <= max_side:
        return im
    size = (max(1, round(w * max_side / max(w, h))), max(1, round(h * max_side / max(w, h))))
    if im.mode in HIGH_DEPTH:
        k = max(1, max(w, h) // max_side)
        a = np.asarray(im)[::k, ::k]
        small = Image.fromarray(np.ascontiguousarray(a.astype(np.int32) if a.dtype == np.uint16 else a))
        return small.resize(size, Image.Resampling.BILINEAR) if small.size != size else small
    if im.mode in ("P", "1"):
        return im.resize(size, Image.Resampling.NEAREST)
    return im.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def to_rgb_array(im: Image.Image, max_side: int | None = None) -> np.ndarray:
    """RGB float32 array in [0, 1], any mode (16-bit, palette, alpha) handled."""
    if max_side:
        im = shrink(im, max_side)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float32)
        a = a / (65535.0 if a.max() > 255 else 255.0)
        return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2)
    if im.mode == "F":
        a = np.clip(np.asarray(im, dtype=np.float32), 0, 1)
        return np.repeat(a[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"), dtype=np.float32) / np.float32(255.0)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB [0,1] → CIE L*a*b* (D65), the same constants as scikit-image (float32 math)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    lin = np.where(rgb > 0.04045, ((rgb + np.float32(0.055)) / np.float32(1.055)) ** np.float32(2.4),
                   rgb / np.float32(12.92))
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
                 dtype=np.float32) / np.array([[0.95047], [1.0], [1.08883]], dtype=np.float32)
    xyz = lin @ m.T
    f = np.where(xyz > 0.008856, np.cbrt(xyz), np.float32(7.787) * xyz + np.float32(16.0 / 116.0))
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler–Süsstrunk colourfulness on 0–255 RGB."""
    r, g, b = (rgb[..., i] * 255.0 for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def dhash(im: Image.Image | np.ndarray) -> str:
    """64-bit difference hash (hex): near-identical images differ in few bits. Takes an image or
    an RGB array in [0, 1] (``to_rgb_array``: any bit depth)."""
    if isinstance(im, np.ndarray):
        grey = (im @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)
        g = Image.fromarray(np.ascontiguousarray(grey), "F").resize((9, 8), Image.Resampling.BILINEAR)
    else:
        g = im.convert("L").resize((9, 8), Image.Resampling.BILINEAR)
    a = np.asarray(g, dtype=np.float32)
    bits = (a[:, 1:] > a[:, :-1]).flatten()
    return f"{int(''.join('1' if x else '0' for x in bits), 2):016x}"


def measure(data: bytes, *, max_pixels: int = 120_000_000, max_bytes: int | None = None) -> ImageInfo:
    """Decode (refusing bad files, see ``open_image``) and measure an image file."""
    im = open_image(data, max_pixels=max_pixels, max_bytes=max_bytes, draft=(512, 512))
    return measure_image(im, fmt=im.format, full_size=im.info["full_size"])


def measure_image(im: Image.Image, *, fmt: str | None = None, full_size: tuple[int, int] | None = None) -> ImageInfo:
    """Measure decoded pixels: what ``measure`` does after decoding, for an image already in
    memory (a result about to be stored as ``fmt``, say) so it need not be decoded again."""
    full_w, full_h = full_size or im.size
    fmt = fmt or im.format or "UNKNOWN"
    info: dict[str, Any] = {"mode": im.mode, "format": fmt, "frames": getattr(im, "n_frames", 1)}
    orientation = exif_orientation(im)
    if orientation and orientation != 1:
        info["exif_orientation"] = orientation
    small = upright(shrink(im, 256), orientation)  # measured small: no full-size copy
    rgb = to_rgb_array(small)
    lab = rgb_to_lab(rgb)
    a, b = lab[..., 1].ravel(), lab[..., 2].ravel()
    chroma = np.hypot(a, b)
    spread = float(np.sqrt(a.var(dtype=np.float64) + b.var(dtype=np.float64)))  # RMS distance from the mean a*b*
    return ImageInfo(
        media_type=MEDIA_TYPES.get(fmt, f"image/{fmt.lower()}"),
        width=full_w, height=full_h, phash=dhash(rgb),
        colourfulness=round(colourfulness(rgb), 3), chroma_mean=round(float(chroma.mean(dtype=np.float64)), 3),
        chroma_spread=round(spread, 3), is_colour=spread >= COLOUR_SPREAD_THRESHOLD, info=info,
    )
