"""Thumbnails made on demand and kept as derived assets.

A thumbnail is an ordinary content-addressed asset (JPEG) whose ``info``
says what it was made from (``derived_from``, ``max_side``); the source
asset's ``info.thumbnails`` maps each size to it, so the next request is a
primary-key lookup and a file read. Only a few sizes exist: a client cannot
make the server render (and store) arbitrary ones.
"""
from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image
from sqlalchemy import Engine, text

from catalog.assets import register_image
from catalog.blobs import BlobKeyError, BlobMissing, BlobStore, BlobStoreError, sha256_bytes, sha_of_key
from catalog.db import session_scope
from catalog.imaging import ImageRejected, exif_orientation, open_image, shrink, to_rgb_array, upright
from catalog.models import Asset
from catalog.settings import Settings

THUMB_SIZES = (200, 400, 800, 1600)
BROWSER_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}
log = logging.getLogger(__name__)

_REMEMBER = text(
    "UPDATE assets SET info = jsonb_set(coalesce(info, '{}'::jsonb), '{thumbnails}', "
    "coalesce(info->'thumbnails', '{}'::jsonb) || jsonb_build_object(CAST(:size AS text), CAST(:sha AS text))) "
    "WHERE sha256 = :src"
)
_MARK = text("UPDATE assets SET info = coalesce(info, '{}'::jsonb) || CAST(:extra AS jsonb) WHERE sha256 = :sha")


class ThumbnailError(ValueError):
    """No thumbnail can be made; the message says why."""


def render(data: bytes, max_side: int, *, max_pixels: int) -> bytes:
    """JPEG of at most ``max_side`` pixels a side, upright, RGB. A JPEG is decoded at a reduced
    scale (draft); any image is reduced before it is turned or converted, so a big scan is held
    in memory once, decoded, and never copied at full size."""
    try:
        im = open_image(data, max_pixels=max_pixels, draft=(max_side, max_side))
    except ImageRejected as exc:
        raise ThumbnailError(str(exc)) from None
    orientation = exif_orientation(im)
    im = shrink(im, max_side * 2)
    if im.mode not in ("L", "RGB"):
        rgb = to_rgb_array(im)  # 16-bit, palette, alpha, CMYK…
        im = Image.fromarray(np.round(rgb * 255).astype(np.uint8), "RGB")
    im = upright(im, orientation)
    im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=84, optimize=True, progressive=True)
    return buf.getvalue()


def cached(src: Asset, size: int) -> str | None:
    """The sha256 of a stored thumbnail of ``src`` at ``size``, if any."""
    return ((src.info or {}).get("thumbnails") or {}).get(str(size))


# Rendering is bounded: at most RENDER_WORKERS renders at once in a process, and one at a time
# per original (its other requests wait, then find the thumbnail made): a burst of first
# requests for one big scan decodes it once at a time, not once per request.
RENDER_WORKERS = 2
_renders = threading.BoundedSemaphore(RENDER_WORKERS)
_per_original: dict[str, list] = {}  # sha256 → [lock, waiters]
_per_original_lock = threading.Lock()


@contextmanager
def _one_render_of(sha256: str) -> Iterator[None]:
    with _per_original_lock:
        entry = _per_original.setdefault(sha256, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        with _per_original_lock:
            entry[1] -= 1
            if not entry[1]:
                del _per_original[sha256]


def thumbnail(engine: Engine, store: BlobStore, settings: Settings, sha256: str, size: int) -> tuple[str, bytes]:
    """(sha256, JPEG bytes) of the thumbnail, made and stored on first use.

    When the database refuses to store it (a read-only account), the bytes
    are still returned: caching is a convenience, never a condition.
    """
    if size not in THUMB_SIZES:
        raise ThumbnailError(f"size must be one of {', '.join(map(str, THUMB_SIZES))}")
    found = _stored(engine, store, sha256, size)
    if found is not None:
        return found
    with _one_render_of(sha256):
        found = _stored(engine, store, sha256, size)  # made meanwhile by the request we waited for
        if found is not None:
            return found
        with _renders:
            return _make(engine, store, settings, sha256, size)


def _stored(engine: Engine, store: BlobStore, sha256: str, size: int) -> tuple[str, bytes] | None:
    with session_scope(engine) as session:
        src = session.get(Asset, sha256)
        if src is None or not src.media_type.startswith("image/"):
            raise LookupError(f"no image asset {sha256}")
        known = cached(src, size)
        if known and store.exists(known):
            return known, store.read(known)
    return None


def _make(engine: Engine, store: BlobStore, settings: Settings, sha256: str, size: int) -> tuple[str, bytes]:
    with session_scope(engine) as session:
        src = session.get(Asset, sha256)
        try:
            data = store.read(sha_of_key(src.blob_key))
        except BlobStoreError:
            raise  # the store is away, not the file: a 503 (catalog.web.app)
        except (BlobKeyError, BlobMissing, OSError):
            raise LookupError(f"the file of asset {sha256} is missing from the blob store") from None
    jpeg = render(data, size, max_pixels=settings.max_image_pixels)
    try:
        with session_scope(engine) as session:
            thumb = register_image(session, store, jpeg, settings=settings)
            session.execute(_MARK, {"sha": thumb.sha256, "extra": json.dumps(
                {"derived_from": sha256, "derivation": "thumbnail", "max_side": size})})
            session.execute(_REMEMBER, {"src": sha256, "size": size, "sha": thumb.sha256})
            return thumb.sha256, jpeg
    except Exception as exc:  # noqa: BLE001 - a cache that cannot be written must not fail the request
        log.warning("thumbnail of %s not cached: %s", sha256, exc)
        return sha256_bytes(jpeg), jpeg
