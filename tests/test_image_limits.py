"""ARHIVA_MAX_IMAGE_PIXELS is the one pixel limit wherever photos are opened; big scans are decoded
without full-size copies; thumbnails render a bounded number at a time."""
from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from catalog.imaging import ImageRejected, measure, use_pixel_limit


@pytest.fixture(autouse=True)
def _pillow_limit_restored():
    before = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = before


def grey_png(w: int, h: int) -> bytes:
    """A valid, nearly empty greyscale PNG of w×h pixels (a few hundred kB however large)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = zlib.compress((b"\x00" + b"\x80" * w) * h, 6)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_a_90_megapixel_scan_is_accepted_under_the_120_megapixel_setting():
    scan = grey_png(9_500, 9_500)  # 90.25 Mpx: over Pillow's own default of 89.5 Mpx
    info = measure(scan, max_pixels=120_000_000)
    assert (info.width, info.height, info.is_colour) == (9_500, 9_500, False)
    with pytest.raises(ImageRejected, match="over the limit of 80,000,000"):
        measure(scan, max_pixels=80_000_000)
    with pytest.raises(ImageRejected, match="over the limit of 40,000,000"):  # over twice: Pillow refuses too
        measure(scan, max_pixels=40_000_000)


def test_colorization_opens_photos_under_the_same_limit(tmp_path):
    from colorization.imageio import ImageTooLarge, load_image, open_image

    path = tmp_path / "scan.png"
    path.write_bytes(grey_png(2_000, 1_500))
    use_pixel_limit(2_000_000)
    with pytest.raises(ImageTooLarge, match="3,000,000 pixels, over the limit of 2,000,000"):
        load_image(path)
    use_pixel_limit(3_000_000)
    assert open_image(path).size == (2_000, 1_500) and load_image(path).size == (2_000, 1_500)


def test_a_photo_over_the_limit_is_told_by_arhivas_limit_and_its_size(tmp_path, monkeypatch):
    """Over twice ARHIVA_MAX_IMAGE_PIXELS Pillow refuses first: the message quoted its figure ("exceeds
    limit of 240000000 pixels") beside arhiva's own 120,000,000, and train-files showed Pillow's alone."""
    from typer.testing import CliRunner

    from catalog.settings import reset_settings_cache
    from flows.cli import app

    scan = grey_png(2_000, 1_500)
    for limit, size in ((2_500_000, "2,000×1,500 = 3,000,000 pixels"), (1_000_000, "3,000,000 pixels")):
        with pytest.raises(ImageRejected) as refused:
            measure(scan, max_pixels=limit)
        assert str(refused.value) == (f"image is {size}, over the limit of {limit:,} "
                                      "(ARHIVA_MAX_IMAGE_PIXELS; decompression-bomb guard)")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "scan.png").write_bytes(scan)
    (photos / "wide.png").write_bytes(grey_png(1_200, 1_000))  # 1.2 Mpx: over the limit, under Pillow's twice
    monkeypatch.setenv("ARHIVA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ARHIVA_MAX_IMAGE_PIXELS", "1000000")
    reset_settings_cache()
    try:
        r = CliRunner().invoke(app, ["train-files", str(photos), "--out", str(tmp_path / "run")])
    finally:
        monkeypatch.delenv("ARHIVA_MAX_IMAGE_PIXELS")
        reset_settings_cache()
    assert r.exit_code == 2, r.output
    skipped = [line for line in r.stderr.splitlines() if line.startswith("skipped ")]
    assert skipped == [f"skipped {photos / name}: ImageTooLarge: {photos / name}: image is {size}, over the limit of "
                       "1,000,000 (ARHIVA_MAX_IMAGE_PIXELS; decompression-bomb guard)"
                       for name, size in (("scan.png", "3,000,000 pixels"),
                                          ("wide.png", "1,200×1,000 = 1,200,000 pixels"))], r.stderr
    assert "error: no training photos found" in r.stderr and "exceeds" not in r.stderr


def test_large_16_bit_scans_are_measured():
    a16 = (np.arange(3_000 * 2_000, dtype=np.uint32).reshape(2_000, 3_000) % 65_536).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(a16).save(buf, "TIFF")
    info = measure(buf.getvalue())  # failed with "image has wrong mode" before
    assert (info.width, info.height, info.info["mode"]) == (3_000, 2_000, "I;16") and not info.is_colour


PEAK = """
import io, json, sys
from PIL import Image
from catalog.web.thumbs import render

def kb(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field))

data = open(sys.argv[1], "rb").read()
open("/proc/self/clear_refs", "w").write("5")  # the peak starts again from here (Linux)
before = kb("VmRSS:")
if sys.argv[2] == "decode":
    Image.open(io.BytesIO(data)).load()
else:
    render(data, 400, max_pixels=120_000_000)
print(json.dumps({"grew_mb": (kb("VmHWM:") - before) / 1024}))
"""


def _grew_mb(path, what: str) -> float:
    out = subprocess.run([sys.executable, "-c", PEAK, str(path), what], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["grew_mb"]


@pytest.mark.parametrize("kind", ["jpeg", "tiff"])
def test_a_thumbnail_of_a_big_scan_never_copies_it_at_full_size(tmp_path, kind):
    w, h = 6_000, 4_000  # 72 MB of RGB once decoded
    im = Image.fromarray(np.random.default_rng(1).integers(0, 255, (h // 40, w // 40, 3), dtype=np.uint8)).resize((w, h))
    path = tmp_path / f"scan.{kind}"
    im.save(path, "JPEG" if kind == "jpeg" else "TIFF")
    decoded, rendered = _grew_mb(path, "decode"), _grew_mb(path, "render")
    assert decoded > 60  # what holding the scan once at full size costs
    # a JPEG decodes at 1/8 scale; a TIFF decodes once and is reduced, never copied at full size
    assert rendered < (0.3 if kind == "jpeg" else 1.3) * decoded, (decoded, rendered)


def test_thumbnails_render_one_at_a_time_per_original_and_a_few_at_a_time_overall(arhiva_env, clean_db,
                                                                                   monkeypatch):
    from catalog.assets import get_store, register_image
    from catalog.db import session_scope
    from catalog.settings import get_settings
    from catalog.web import thumbs
    from tests.helpers import jpeg_bytes

    store, settings = get_store(), get_settings()
    with session_scope(clean_db) as s:
        shas = [register_image(s, store, jpeg_bytes(i, (900, 600)), settings=settings).sha256 for i in range(4)]
    running: dict[str, int] = {}
    peak = {"all": 0, "one": 0}
    renders = []
    lock = threading.Lock()
    real = thumbs.render

    def slow_render(data, size, *, max_pixels):
        key = str(hash(data))
        with lock:
            running[key] = running.get(key, 0) + 1
            peak["one"] = max(peak["one"], running[key])
            peak["all"] = max(peak["all"], sum(running.values()))
            renders.append((key, size))
        time.sleep(0.05)
        try:
            return real(data, size, max_pixels=max_pixels)
        finally:
            with lock:
                running[key] -= 1

    monkeypatch.setattr(thumbs, "render", slow_render)

    def burst(jobs):
        threads = [threading.Thread(target=thumbs.thumbnail, args=(clean_db, store, settings, sha, size))
                   for sha, size in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    burst([(shas[0], size) for size in thumbs.THUMB_SIZES] * 2)  # 8 first requests for one scan
    assert peak["one"] == 1 and len(renders) == 4  # one render at a time, each size made once
    burst([(sha, 200) for sha in shas[1:]] * 3)
    assert peak["all"] <= thumbs.RENDER_WORKERS and len(renders) == 7
