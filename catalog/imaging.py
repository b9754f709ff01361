"""Measure an image file: size, type, perceptual hash, colour or greyscale.

Pure functions over bytes (Pillow + NumPy); no database. Oversized files and
decompression bombs are refused before the pixels are decoded.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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


def open_image(data: bytes, *, max_pixels: int, max_bytes: int | None = None,
               draft: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode, refusing oversized, truncated or unknown files.

    ``draft``: a JPEG may be decoded at a reduced scale (DCT scaling; every byte is still
    read, so truncation is still caught); the full size is then in ``im.info["full_size"]``.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageRejected(f"file is {len(data):,} bytes, over the limit of {max_bytes:,}")
    if not data:
        raise ImageRejected("file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > max_pixels:
                raise ImageRejected(f"image is {w}×{h} = {w * h:,} pixels, over the limit of {max_pixels:,} "
                                    "(decompression-bomb guard)")
            im.info["full_size"] = (w, h)
            if draft and im.format == "JPEG" and im.mode in ("L", "RGB"):
                im.draft(im.mode, draft)
            im.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from None
    except UnidentifiedImageError:
        head = data[:64].lstrip().lower()
        kind = "an HTML page" if head.startswith((b"<!doctype html", b"<html")) else "not an image"
        raise ImageRejected(f"file is {kind} (no image format recognised)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"image cannot be decoded ({exc}); truncated or corrupt?") from None
    return im


def to_rgb_array(im: Image.Image, max_side: int | None = None) -> np.ndarray:
    """RGB float32 array in [0, 1], any mode (16-bit, palette, alpha) handled."""
    if max_side and max(im.size) > max_side:
        im = im.copy()
        im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
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


def dhash(im: Image.Image) -> str:
    """64-bit difference hash (hex): near-identical images differ in few bits."""
    g = im.convert("L").resize((9, 8), Image.Resampling.BILINEAR)
    a = np.asarray(g, dtype=np.int16)
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
    try:
        orientation = im.getexif().get(0x0112)
    except Exception:  # broken EXIF must not sink the image
        orientation = None
    if orientation and orientation != 1:
        info["exif_orientation"] = int(orientation)
    small = ImageOps.exif_transpose(im) if orientation else im
    rgb = to_rgb_array(small, max_side=256)
    lab = rgb_to_lab(rgb)
    a, b = lab[..., 1].ravel(), lab[..., 2].ravel()
    chroma = np.hypot(a, b)
    spread = float(np.sqrt(a.var(dtype=np.float64) + b.var(dtype=np.float64)))  # RMS distance from the mean a*b*
    return ImageInfo(
        media_type=MEDIA_TYPES.get(fmt, f"image/{fmt.lower()}"),
        width=full_w, height=full_h, phash=dhash(small),
        colourfulness=round(colourfulness(rgb), 3), chroma_mean=round(float(chroma.mean(dtype=np.float64)), 3),
        chroma_spread=round(spread, 3), is_colour=spread >= COLOUR_SPREAD_THRESHOLD, info=info,
    )
