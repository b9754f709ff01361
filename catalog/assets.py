"""Register files as content-addressed assets and link them to records."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from catalog.blobs import BlobStore, blob_key, open_store, sha256_bytes
from catalog.imaging import ImageInfo, ImageRejected, measure, measure_image
from catalog.models import Asset, RecordAsset
from catalog.settings import Settings, get_settings

__all__ = ["ImageRejected", "PreparedImage", "prepare_image", "prepare_made_image", "register_prepared",
           "register_image", "register_file", "link_asset", "link_assets", "get_store"]


def get_store(settings: Settings | None = None) -> BlobStore:
    """The blob store the settings name (``ARHIVA_BLOBS``; default ``ARHIVA_HOME/blobs``)."""
    return open_store(settings or get_settings())


@dataclass
class PreparedImage:
    """An image measured and put in the blob store, ready to be catalogued (``register_prepared``)."""

    sha256: str
    size: int
    info: ImageInfo


def prepare_image(store: BlobStore, data: bytes, *, settings: Settings | None = None) -> PreparedImage:
    """Measure (raises ImageRejected with the reason) and store the bytes; no database, so it can run
    in worker threads or processes while a transaction is busy elsewhere."""
    settings = settings or get_settings()
    info = measure(data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
    return PreparedImage(store.put_bytes(data), len(data), info)  # put_bytes: hashed once, stored once


def prepare_made_image(store: BlobStore, image: Any, data: bytes, fmt: str) -> PreparedImage:
    """An image arhiva made itself (a colorization): ``data`` is ``image`` encoded as ``fmt``.
    Measured from the pixels in memory (no second decode) and stored once; no database."""
    return PreparedImage(store.put_bytes(data), len(data), measure_image(image, fmt=fmt))


def register_prepared(session: Session, *images: PreparedImage) -> None:
    """The asset rows of prepared images, in one statement (idempotent)."""
    if not images:
        return
    session.execute(pg_insert(Asset).values([
        {"sha256": im.sha256, "media_type": im.info.media_type, "width": im.info.width, "height": im.info.height,
         "bytes": im.size, "phash": im.info.phash, "colourfulness": im.info.colourfulness,
         "chroma_mean": im.info.chroma_mean, "chroma_spread": im.info.chroma_spread, "is_colour": im.info.is_colour,
         "blob_key": blob_key(im.sha256), "info": im.info.info}
        for im in {im.sha256: im for im in images}.values()
    ]).on_conflict_do_nothing(index_elements=["sha256"]))


def register_image(session: Session, store: BlobStore, data: bytes, *, settings: Settings | None = None) -> Asset:
    """Measure, store (once) and catalogue an image; raises ImageRejected with the reason."""
    sha = sha256_bytes(data)
    found = session.get(Asset, sha)
    if found is not None:
        if not store.exists(sha):  # the blob went missing: put it back
            store.put_bytes(data)
        return found
    register_prepared(session, prepare_image(store, data, settings=settings))
    return session.get(Asset, sha)


def register_file(session: Session, store: BlobStore, data: bytes, media_type: str,
                  info: dict[str, Any] | None = None) -> Asset:
    """Catalogue a non-image file (a model checkpoint, say) by content."""
    sha = store.put_bytes(data)
    session.execute(pg_insert(Asset).values(sha256=sha, media_type=media_type, bytes=len(data),
                                            blob_key=blob_key(sha), info=info or {})
                    .on_conflict_do_nothing(index_elements=["sha256"]))
    return session.get(Asset, sha)


def link_asset(session: Session, record_id: int, sha256: str, role: str = "original", *,
               source_url: str | None = None, run_id: int | None = None, etag: str | None = None,
               last_modified: str | None = None, crop_box: list[int] | None = None) -> int:
    """Link an asset to a record (idempotent); returns the link id."""
    return link_assets(session, [{
        "record_id": record_id, "asset_sha256": sha256, "role": role, "source_url": source_url,
        "first_seen_run_id": run_id, "last_seen_run_id": run_id, "etag": etag, "last_modified": last_modified,
        "crop_box": crop_box}])[0]


def link_assets(session: Session, links: list[dict[str, Any]]) -> list[int]:
    """Many links in one statement (keys as ``link_asset`` takes them, ``run_id`` spelled
    ``first_seen_run_id``/``last_seen_run_id``); returns the link ids in order."""
    if not links:
        return []
    cols = ("record_id", "asset_sha256", "source_url", "first_seen_run_id", "last_seen_run_id", "etag",
            "last_modified", "crop_box")
    links = [{c: ln.get(c) for c in cols} | {"role": ln.get("role", "original")} for ln in links]
    rows = {(ln["record_id"], ln["asset_sha256"], ln["role"]): ln for ln in links}  # a repeat: the last wins
    stmt = pg_insert(RecordAsset).values(list(rows.values()))
    ex = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        constraint="uq_record_assets_link",
        set_={"last_seen_run_id": func.coalesce(ex.last_seen_run_id, RecordAsset.last_seen_run_id),
              "source_url": func.coalesce(ex.source_url, RecordAsset.source_url),
              "etag": func.coalesce(ex.etag, RecordAsset.etag),
              "last_modified": func.coalesce(ex.last_modified, RecordAsset.last_modified),
              "crop_box": ex.crop_box},
    ).returning(RecordAsset.id, RecordAsset.record_id, RecordAsset.asset_sha256, RecordAsset.role)
    ids = {(r.record_id, r.asset_sha256, r.role): r.id for r in session.execute(stmt)}
    return [ids[(ln["record_id"], ln["asset_sha256"], ln["role"])] for ln in links]
