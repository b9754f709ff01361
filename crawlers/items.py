"""What spiders hand to the pipelines."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from catalog.records_in import RecordIn

# The crop box of a downloaded image from its (width, height): e.g. all but a watermark strip.
CropBoxRule = Callable[[int, int], "list[int] | None"]


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RecordItem:
    """One record as a spider found it, with its provenance and its image.

    ``record`` is None when only the image is to be (re)fetched for a record
    the catalogue already has under ``source_key``. ``crop_box`` (the part
    of the image that is the photo) is either a box ``[left, top, right,
    bottom]`` or a ``CropBoxRule`` for the downloaded image's size (e.g.
    all but a watermark strip); the box is stored on the record–asset link.
    """

    source_key: str
    record: RecordIn | None = None
    fetched_url: str | None = None                 # API call or page the record came from
    fetched_at: str = field(default_factory=utcnow)
    image_url: str | None = None
    image_role: str = "original"
    image_headers: dict[str, str] = field(default_factory=dict)
    crop_box: list[int] | CropBoxRule | None = None
    image_current: bool = False                    # the record already has this image: no download
    # Filled by ImageDownloadPipeline:
    image_body: bytes | None = None
    image_etag: str | None = None
    image_last_modified: str | None = None
    image: Any = None                              # catalog.harvest.PreparedImage, set by CatalogPipeline

    def crop_box_for(self, width: int | None, height: int | None) -> list[int] | None:
        """The crop box for the downloaded image's size (None: the whole image)."""
        if self.crop_box is None or width is None or height is None:
            return None
        if callable(self.crop_box):
            return self.crop_box(width, height)
        return list(self.crop_box)


@dataclass
class SeenItem:
    """A record the spider saw unchanged at its source: only "last seen" moves."""

    source_key: str
    record_id: int
    asset_urls: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
