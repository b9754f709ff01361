"""Files at stable URLs: images by sha256, thumbnails, IIIF manifests.

Only assets the catalogue knows are served, only images of a safe type
(no SVG, no HTML: nothing a browser would run), and only through the blob
store's own key check, so no path can leave the store.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select

from catalog.blobs import BlobKeyError, LocalBlobStore, sha_of_key
from catalog.models import Asset, Colorization, ModelVersion
from catalog.web.api import DB, NOT_FOUND, RecordId, Sha256, load_record
from catalog.web.blobfiles import blob_response
from catalog.web.deps import base_url
from catalog.web.iiif import MEDIA_TYPE, build_manifest
from catalog.web.thumbs import THUMB_SIZES, ThumbnailError, thumbnail

router = APIRouter()
SERVED_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/jp2", "image/bmp"}
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
             "Access-Control-Allow-Origin": "*"}
IMAGE = {200: {"content": {"image/jpeg": {}}, "description": "The image."}}
ANY_IMAGE = {200: {"content": {t: {} for t in sorted(SERVED_TYPES)},
                   "description": "The image file as stored: JPEG, PNG, WebP, GIF, TIFF, JPEG 2000 or BMP."}}
ThumbSize = IntEnum("ThumbSize", {f"px{n}": n for n in THUMB_SIZES})  # documented as an enum; others: 422


@router.get("/assets/{sha256}", response_class=FileResponse, responses=NOT_FOUND | ANY_IMAGE, tags=["files"])
def asset_file(request: Request, session: DB, sha256: Sha256) -> Response:
    """The image file itself, as stored (content-addressed: it never changes)."""
    a = session.get(Asset, sha256)
    if a is None or a.media_type not in SERVED_TYPES:
        raise HTTPException(404, f"no image {sha256}")
    store = request.app.state.store
    try:
        if not isinstance(store, LocalBlobStore):  # S3: streamed (with ranges) or redirected
            return blob_response(request, store, sha_of_key(a.blob_key), a.media_type, IMMUTABLE,
                                 f"{sha256}{_suffix(a.media_type)}")
        path = store.path_for_key(a.blob_key)
    except BlobKeyError:
        raise HTTPException(404, f"no image {sha256}") from None
    if not path.is_file():
        raise HTTPException(404, f"the file of {sha256} is missing from the blob store")
    return FileResponse(path, media_type=a.media_type, headers=IMMUTABLE | {"ETag": f'"{sha256}"'},
                        content_disposition_type="inline", filename=f"{sha256}{_suffix(a.media_type)}")


def _suffix(media_type: str) -> str:
    return "." + {"image/jpeg": "jpg", "image/jp2": "jp2"}.get(media_type, media_type.split("/")[-1])


@router.get("/assets/{sha256}/thumb/{size}", responses=NOT_FOUND | IMAGE, response_class=Response, tags=["files"])
async def asset_thumbnail(request: Request, sha256: Sha256,
                          size: Annotated[ThumbSize, Path(description=f"One of {', '.join(map(str, THUMB_SIZES))}.")]
                          ) -> Response:
    """A JPEG of at most SIZE pixels a side, made on first use and kept as a derived asset.
    Another size is a 422 like every invalid parameter."""
    size = int(size)
    if request.headers.get("if-none-match", "").strip('"').startswith(f"{sha256}-{size}"):
        return Response(status_code=304, headers=IMMUTABLE)
    state = request.app.state
    try:
        _, jpeg = await run_in_threadpool(thumbnail, state.engine, state.store, state.settings, sha256, size)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ThumbnailError as exc:
        raise HTTPException(404, f"no thumbnail: {exc}") from None
    return Response(jpeg, media_type="image/jpeg", headers=IMMUTABLE | {"ETag": f'"{sha256}-{size}"'})


@router.get("/iiif/records/{record_id}/manifest", responses=NOT_FOUND | {200: {"content": {MEDIA_TYPE: {}}}},
            tags=["IIIF"])
def manifest(request: Request, session: DB, record_id: RecordId) -> JSONResponse:
    """IIIF Presentation 3 manifest: one canvas; the original and its colorized versions as a Choice."""
    rec = load_record(session, record_id)
    results = [ra.asset_sha256 for ra in rec.assets if ra.role == "colorized"]
    models = dict(session.execute(
        select(Colorization.result_sha256, ModelVersion.name).join(ModelVersion, ModelVersion.id ==
                                                                   Colorization.model_version_id)
        .where(Colorization.result_sha256.in_(results))).all()) if results else {}
    try:
        body = build_manifest(rec, base_url(request), models)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    return JSONResponse(body, media_type=MEDIA_TYPE, headers={"Access-Control-Allow-Origin": "*"})
