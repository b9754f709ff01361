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

import numpy as np
from PIL import Image, ImageOps
from sqlalchemy import Engine, text

from catalog.assets import register_image
from catalog.blobs import BlobKeyError, BlobMissing, BlobStore, sha256_bytes, sha_of_key
from catalog.db import session_scope
from catalog.imaging import ImageRejected, open_image, to_rgb_array
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
    """JPEG of at most ``max_side`` pixels a side, upright, RGB."""
    try:
        im = open_image(data, max_pixels=max_pixels)
    except ImageRejected as exc:
        raise ThumbnailError(str(exc)) from None
    im = ImageOps.exif_transpose(im)
    if im.mode not in ("L", "RGB"):
        rgb = to_rgb_array(im, max_side=max_side * 2)  # 16-bit, palette, alpha, CMYK…
        im = Image.fromarray(np.round(rgb * 255).astype(np.uint8), "RGB")
    im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=84, optimize=True, progressive=True)
    return buf.getvalue()


def cached(src: Asset, size: int) -> str | None:
    """The sha256 of a stored thumbnail of ``src`` at ``size``, if any."""
    return ((src.info or {}).get("thumbnails") or {}).get(str(size))


def thumbnail(engine: Engine, store: BlobStore, settings: Settings, sha256: str, size: int) -> tuple[str, bytes]:
    """(sha256, JPEG bytes) of the thumbnail, made and stored on first use.

    When the database refuses to store it (a read-only account), the bytes
    are still returned: caching is a convenience, never a condition.
    """
    if size not in THUMB_SIZES:
        raise ThumbnailError(f"size must be one of {', '.join(map(str, THUMB_SIZES))}")
    with session_scope(engine) as session:
        src = session.get(Asset, sha256)
        if src is None or not src.media_type.startswith("image/"):
            raise LookupError(f"no image asset {sha256}")
        known = cached(src, size)
        if known and store.exists(known):
            return known, store.read(known)
        try:
            data = store.read(sha_of_key(src.blob_key))
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
