"""Blob store and asset registration: by content, atomic, measured, refusing bad images."""
from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from catalog.assets import get_store, link_asset, link_assets, prepare_made_image, register_image
from catalog.blobs import BlobKeyError, LocalBlobStore, sha256_bytes
from catalog.db import session_scope
from catalog.imaging import ImageRejected, measure
from catalog.ingest import RecordIn, get_or_create_source, upsert_records
from catalog.models import Asset, RecordAsset
from tests.helpers import image, jpeg_bytes, png_bytes


def test_blob_store_keeps_the_same_bytes_once(tmp_path):
    store = LocalBlobStore(tmp_path)
    data = b"\xff\xd8 some bytes"
    a = store.put_bytes(data)
    b = store.put_bytes(data)
    assert a == b == sha256_bytes(data)
    assert store.path(a).read_bytes() == data
    assert store.path(a).relative_to(tmp_path).parts[:3] == ("sha256", a[:2], a[2:4])
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [store.path(a)]  # no temp files left behind


def test_blob_store_streams_and_leaves_no_partial_file_on_error(tmp_path):
    store = LocalBlobStore(tmp_path)

    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 10:
                raise OSError("disk gone")
            return super().read(4)

    with pytest.raises(OSError):
        store.put_stream(Broken(b"x" * 100))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    sha = store.put_stream(io.BytesIO(b"y" * 3_000_000))
    assert store.path(sha).stat().st_size == 3_000_000


def test_blob_keys_cannot_escape_the_store(tmp_path):
    store = LocalBlobStore(tmp_path)
    for bad in ("../etc/passwd", "sha256/../../x", "sha256/ab/cd/" + "a" * 64, "sha256/aa/aa/zz"):
        with pytest.raises(BlobKeyError):
            store.path_for_key(bad)
    good = "a" * 64
    assert store.path_for_key(f"sha256/aa/aa/{good}") == tmp_path / "sha256" / "aa" / "aa" / good


def test_measure_size_type_hash_and_colour():
    grey = measure(jpeg_bytes(seed=3, size=(80, 60), grey=True))
    colour = measure(jpeg_bytes(seed=3, size=(80, 60)))
    assert (grey.width, grey.height, grey.media_type) == (80, 60, "image/jpeg")
    assert grey.is_colour is False and colour.is_colour is True
    assert len(grey.phash) == 16
    # the same picture, re-encoded, has (almost) the same perceptual hash
    again = measure(jpeg_bytes(seed=3, size=(80, 60), grey=True, quality=60))
    assert bin(int(grey.phash, 16) ^ int(again.phash, 16)).count("1") <= 6


def test_sepia_print_counts_as_greyscale():
    g = image(seed=4, size=(64, 64), grey=True)
    sepia = Image.merge("RGB", [g.point(lambda v: min(255, int(v * 1.07) + 20)), g.point(lambda v: int(v * 0.94) + 10),
                                g.point(lambda v: int(v * 0.75))])
    info = measure(png_bytes(sepia))
    assert info.chroma_mean > 5  # visibly toned …
    assert info.is_colour is False  # … but one hue: not a colour photograph


def test_sixteen_bit_and_palette_images_are_measured():
    import numpy as np

    arr = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype("uint16")
    im16 = Image.fromarray(arr)
    info = measure(png_bytes(im16))
    assert (info.width, info.height, info.is_colour) == (32, 32, False)
    pal = image(seed=5).convert("P", palette=Image.Palette.ADAPTIVE)
    assert measure(png_bytes(pal)).is_colour is True


@pytest.mark.parametrize("data, reason", [
    (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML page"),
    (b"", "empty"),
    (jpeg_bytes(seed=1, size=(200, 200))[:300], "truncated or corrupt"),
])
def test_bad_images_are_refused_with_a_reason(data, reason):
    with pytest.raises(ImageRejected, match=reason):
        measure(data)


def test_decompression_bomb_and_size_limits():
    big = png_bytes(Image.new("L", (3000, 3000)))
    with pytest.raises(ImageRejected, match="decompression-bomb guard"):
        measure(big, max_pixels=1_000_000)
    with pytest.raises(ImageRejected, match="over the limit"):
        measure(big, max_bytes=100)


def test_register_image_once_and_link_to_records(clean_db, arhiva_env):
    data = jpeg_bytes(seed=9)
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "a", "folder").id
        ids = upsert_records(s, sid, [RecordIn("r1"), RecordIn("r2")]).ids
        store = get_store()
        a1 = register_image(s, store, data)
        a2 = register_image(s, store, data)
        assert a1.sha256 == a2.sha256
        link_asset(s, ids["r1"], a1.sha256, "original", source_url="https://example.org/1.jpg", etag='"x"')
        link_asset(s, ids["r1"], a1.sha256, "original", source_url="https://example.org/1.jpg", etag='"y"')
        link_asset(s, ids["r2"], a1.sha256, "original", crop_box=[0, 0, 64, 40])
    with session_scope(clean_db) as s:
        assert s.scalar(select(func.count()).select_from(Asset)) == 1
        links = s.execute(select(RecordAsset).order_by(RecordAsset.id)).scalars().all()
        assert len(links) == 2
        assert links[0].etag == '"y"' and links[1].crop_box == [0, 0, 64, 40]
    blobs = [p for p in (arhiva_env / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1 and blobs[0].read_bytes() == data


def test_rejected_image_stores_nothing(clean_db, arhiva_env):
    with session_scope(clean_db) as s:
        with pytest.raises(ImageRejected):
            register_image(s, get_store(), b"<html>oops</html>")
        assert s.scalar(select(func.count()).select_from(Asset)) == 0
    assert not (arhiva_env / "blobs").exists() or not any(p.is_file() for p in (arhiva_env / "blobs").rglob("*"))


def test_a_made_image_is_measured_from_memory_like_its_stored_file(tmp_path):
    store = LocalBlobStore(tmp_path)
    for grey in (False, True):
        im = image(seed=11, size=(320, 240), grey=grey).convert("RGB")
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=95, subsampling=0)
        made = prepare_made_image(store, im, buf.getvalue(), "JPEG")
        decoded = measure(buf.getvalue())
        assert store.path(made.sha256).read_bytes() == buf.getvalue()
        assert (made.info.width, made.info.height, made.info.media_type) == (320, 240, "image/jpeg")
        assert made.info.is_colour is decoded.is_colour is (not grey)
        assert bin(int(made.info.phash, 16) ^ int(decoded.phash, 16)).count("1") <= 2
        assert abs(made.info.chroma_spread - decoded.chroma_spread) < 0.5
        assert abs(made.info.colourfulness - decoded.colourfulness) < 1.0


def test_many_links_in_one_statement_keep_order_and_merge_repeats(clean_db, arhiva_env):
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "a", "folder").id
        ids = upsert_records(s, sid, [RecordIn("r1"), RecordIn("r2")]).ids
        store = get_store()
        a = register_image(s, store, jpeg_bytes(seed=1)).sha256
        b = register_image(s, store, jpeg_bytes(seed=2)).sha256
        first = link_asset(s, ids["r1"], a, "original", etag='"1"')
        got = link_assets(s, [
            {"record_id": ids["r2"], "asset_sha256": b, "role": "colorized"},
            {"record_id": ids["r1"], "asset_sha256": a, "etag": '"2"'},  # role defaults to original
            {"record_id": ids["r2"], "asset_sha256": b, "role": "colorized", "source_url": "https://x.org/b"},
        ])
        assert got[1] == first and got[0] == got[2] != first
        assert s.execute(select(func.count()).select_from(RecordAsset)).scalar_one() == 2
        rows = {(r.record_id, r.role): r for r in s.execute(select(RecordAsset)).scalars()}
        assert rows[(ids["r1"], "original")].etag == '"2"'
        assert rows[(ids["r2"], "colorized")].source_url == "https://x.org/b"
        assert link_assets(s, []) == []
