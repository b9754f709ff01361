"""Reading photos of any kind into arrays: every PIL mode, 16-bit, EXIF orientation, crop boxes."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "ImageSource",
    "ImageTooLarge",
    "LoadedImage",
    "open_image",
    "load_image",
    "clamp_box",
    "IMAGE_SUFFIXES",
    "list_images",
    "output_paths",
    "photo_errors",
    "save_atomically",
]

ImageSource = Union[str, Path, Image.Image]
Box = tuple[int, int, int, int]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif"}


@dataclass
class LoadedImage:
    """Pixels of one photo after EXIF orientation.

    ``pixels``: H x W x C with C = 1 (grey) or 3 (RGB); uint8, or float32 in [0, 1] for
    images of more than 8 bits. ``alpha``: H x W uint8 or None.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    mode: str

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def is_grey(self) -> bool:
        return self.pixels.shape[2] == 1

    def rgb_uint8(self) -> np.ndarray:
        """H x W x 3 uint8 (grey replicated, high bit depth rounded)."""
        p = self.pixels
        if p.dtype != np.uint8:
            p = np.clip(p * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(p, 3, axis=2) if p.shape[2] == 1 else p


class ImageTooLarge(ValueError):
    """A photo over the process's pixel limit (Pillow's ``Image.MAX_IMAGE_PIXELS``)."""


def _too_large(src: ImageSource, size: str, limit: int) -> str:
    """As arhiva says it everywhere (``catalog.imaging.over_pixel_limit``): the photo's size and the
    limit as set, never Pillow's own figure of twice the limit."""
    return (f"{src}: image is {size}, over the limit of {limit:,} "
            "(ARHIVA_MAX_IMAGE_PIXELS; decompression-bomb guard)")


def open_image(src: ImageSource) -> Image.Image:
    """Open a path (or take a PIL image) and apply its EXIF orientation.

    A file over ``Image.MAX_IMAGE_PIXELS`` is refused (``ImageTooLarge``) before it is decoded;
    arhiva's flows and commands set that limit to ``ARHIVA_MAX_IMAGE_PIXELS``. The image is
    turned only when its orientation asks for it (no full-size copy otherwise)."""
    if isinstance(src, Image.Image):
        img = src
    else:
        limit = Image.MAX_IMAGE_PIXELS
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is checked here
                img = Image.open(src)
        except Image.DecompressionBombError as exc:  # over twice the limit: Pillow's own refusal, told as ours
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise ImageTooLarge(_too_large(src, f"{int(found.group(1)):,} pixels" if found else "too many pixels",
                                           limit)) from None
        if limit and img.width * img.height > limit:
            img.close()
            raise ImageTooLarge(_too_large(src, f"{img.width:,}×{img.height:,} = {img.width * img.height:,} pixels",
                                           limit))
    try:
        orientation = img.getexif().get(0x0112)
        out = ImageOps.exif_transpose(img) if orientation not in (None, 1) else img
    except Exception:  # broken EXIF should not stop colorization
        out = img
    return out if out is not None else img


def _high_depth(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img)
    if img.mode == "F":
        a = arr.astype(np.float32)
        scale = 255.0 if a.max(initial=0.0) > 1.0 else 1.0
    else:
        a = arr.astype(np.float32)
        scale = 65535.0 if img.mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
    return np.clip(a / scale, 0.0, 1.0)[:, :, None]


def load_image(src: ImageSource) -> LoadedImage:
    """Load any photo: 1, L, LA, P, PA, RGB, RGBA, CMYK, YCbCr, I;16, I, F..."""
    img = open_image(src)
    mode = img.mode
    alpha = None
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    elif mode == "1":
        img = img.convert("L")
    if img.mode in ("RGBA", "RGBa", "LA", "La"):
        alpha = np.asarray(img.getchannel("A"))
        img = img.convert("RGB" if img.mode.startswith("RGB") else "L")
    if img.mode == "L":
        pixels = np.array(img)[:, :, None]
    elif img.mode in ("F", "I") or img.mode.startswith("I;16"):
        pixels = _high_depth(img)
    else:
        pixels = np.array(img.convert("RGB"))
    return LoadedImage(np.ascontiguousarray(pixels), alpha, mode)


def clamp_box(box: Box | None, size: tuple[int, int]) -> Box:
    """A (left, top, right, bottom) box clipped to the image; None means the whole image."""
    w, h = size
    if box is None:
        return (0, 0, w, h)
    left, top, right, bottom = (int(v) for v in box)
    left, top = max(0, left), max(0, top)
    right, bottom = min(w, right), min(h, bottom)
    if right - left < 8 or bottom - top < 8:
        raise ValueError(f"crop box {box} leaves less than 8x8 pixels of a {w}x{h} image")
    return (left, top, right, bottom)


def list_images(*roots: str | Path) -> list[Path]:
    """Image files under the given files/folders (recursive), sorted."""
    out: list[Path] = []
    for root in roots:
        p = Path(root)
        if p.is_dir():
            out += [f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return sorted(set(out))


def output_paths(images: list[Path], roots: list[Path], out: Path, suffix: str) -> dict[Path, Path]:
    """Where each photo's colorized copy goes under ``out``: its path below the folder it was found
    in (a photo named on its own: its name), with ``suffix``. Photos whose copies would share a
    name (``x.bmp`` and ``x.webp``; ``a/x.jpg`` and ``b/x.jpg`` named on their own) keep their
    extension (``x.bmp.png``), then a number. ValueError when a copy would replace a photo."""
    folders = [Path(r).resolve() for r in roots if Path(r).is_dir()]

    def below(img: Path) -> Path:
        real = img.resolve()
        return next((real.relative_to(f) for f in folders if real.is_relative_to(f)), Path(img.name))

    from collections import Counter

    rel = {img: below(img) for img in images}
    paths = {img: r.with_name(r.stem + suffix) for img, r in rel.items()}
    shared = {p for p, n in Counter(paths.values()).items() if n > 1}
    paths = {img: (rel[img].with_name(rel[img].name + suffix) if p in shared else p) for img, p in paths.items()}
    taken: set[Path] = set()
    for img, p in paths.items():
        n, q = 1, p
        while q in taken:
            n += 1
            q = p.with_name(f"{p.name[:-len(suffix)]}-{n}{suffix}")
        taken.add(q)
        paths[img] = out / q
    originals = {img.resolve() for img in images}
    for img, p in paths.items():
        if p.resolve() in originals:
            raise ValueError(f"--out {out}: the copy of {img} would replace the photo {p}; choose another --out")
    return paths


def save_atomically(img: Image.Image, path: Path, **options) -> None:
    """``img`` written to ``path`` under a temporary name first: an interrupted save leaves an
    earlier file of that name as it was, never a truncated one."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG", **options)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def photo_errors() -> tuple[type[BaseException], ...]:
    """What one photo that cannot be read raises: undecodable or truncated (OSError), over the
    pixel limit, a crop box that does not fit it (ValueError). Anything else is not the photo's."""
    return OSError, ValueError, SyntaxError, Image.DecompressionBombError
