"""A small catalogue for the web tests (and the README screenshots): records with
images, a colorization with its model version and runs, a revised record, and
harvested text with HTML in it."""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from sqlalchemy import text

from catalog.assets import get_store, link_asset, register_file, register_image
from catalog.db import session_scope
from catalog.ingest import RecordIn, get_or_create_source, upsert_records
from catalog.models import Base, Colorization, ModelVersion
from catalog.runs import activity

CC_BY = "http://creativecommons.org/licenses/by/4.0/"


def scene(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A photo-like colour street scene: sky, hills, houses with roofs and windows, a road."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy = np.linspace(0, 1, h)[:, None, None]
    sky = (np.array([120, 165, 215]) * (1 - yy) + np.array([225, 232, 240]) * yy)
    im = Image.fromarray(np.broadcast_to(sky, (h, w, 3)).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    horizon = int(h * (0.5 + 0.1 * rng.random()))
    hills = [(0, horizon)] + [(x, horizon - int(30 * rng.random()) - 10) for x in range(0, w + 40, 40)] + [(w, horizon)]
    d.polygon(hills + [(w, h), (0, h)], fill=(96, 128, 78))
    d.polygon([(0, h), (w * 0.42, horizon + 8), (w * 0.58, horizon + 8), (w, h)], fill=(150, 140, 125))
    x = 0
    while x < w:
        bw, bh = int(50 + 60 * rng.random()), int(50 + 90 * rng.random())
        base = horizon + 25 + int(20 * rng.random())
        wall = tuple(int(v) for v in rng.choice([(222, 205, 170), (200, 170, 140), (235, 230, 215), (190, 120, 90)]))
        if not (w * 0.38 < x + bw / 2 < w * 0.62):
            d.rectangle([x, base - bh, x + bw, base], fill=wall, outline=(90, 80, 70))
            d.polygon([(x - 5, base - bh), (x + bw / 2, base - bh - 28), (x + bw + 5, base - bh)], fill=(150, 60, 45))
            for wx in range(x + 8, x + bw - 12, 18):
                for wy in range(base - bh + 10, base - 18, 24):
                    d.rectangle([wx, wy, wx + 9, wy + 13], fill=(60, 70, 85))
        x += bw + int(10 * rng.random())
    for _ in range(6):
        tx, ty = int(w * rng.random()), horizon + int(60 * rng.random()) + 20
        d.ellipse([tx - 14, ty - 40, tx + 14, ty], fill=(60, 105, 55))
        d.rectangle([tx - 2, ty, tx + 2, ty + 14], fill=(80, 60, 40))
    noise = rng.normal(0, 3, (h, w, 1))
    arr = np.clip(np.asarray(im.filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float64) + noise, 0, 255)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def jpeg(im: Image.Image, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def sepia(im: Image.Image) -> Image.Image:
    g = np.asarray(im.convert("L"), dtype=np.float64)[..., None]
    return Image.fromarray(np.clip(g * np.array([1.0, 0.93, 0.8]) + np.array([18, 10, 0]), 0, 255).astype(np.uint8))


@lru_cache(maxsize=64)
def photo(seed: int, kind: str = "colour") -> bytes:
    """JPEG of scene ``seed``: 'colour', 'grey' or 'sepia' (cached: tests fill many catalogues)."""
    im = scene(seed)
    return jpeg({"colour": im, "grey": im.convert("L"), "sepia": sepia(im)}[kind])


RECORDS = [
    RecordIn("cat-1935", title="Catedrala Mitropolitană din Chișinău", date_text="circa 1935", year_lo=1935,
             year_hi=1935, place="Chișinău, Piața Catedralei", lat=47.0245, lon=28.8323, direction="n",
             author="Fotograf necunoscut", licence=CC_BY, attribution="Colecția Muzeului Național / PastVu",
             url="https://pastvu.com/p/1001", description="Vedere dinspre sud a catedralei și a clopotniței."),
    RecordIn("str-20s", title="Strada Alexandrovskaia", date_text="anii 1920", year_lo=1920, year_hi=1929,
             place="Chișinău", lat=47.02, lon=28.83, licence="Public domain", url="https://pastvu.com/p/1002"),
    RecordIn("gara-1899", title="Gara din Chișinău", date_text="înainte de 1900", year_hi=1899, place="Chișinău",
             lat=47.0, lon=28.86, licence="http://rightsstatements.org/vocab/NoC-US/1.0/"),
    RecordIn("soroca", title="Cetatea Soroca", date_text="1936-1940", year_lo=1936, year_hi=1940, place="Soroca",
             lat=48.157, lon=28.301, description="Fortăreața de pe Nistru"),
    RecordIn("bender", title="Улица в Бендерах", date_text="1960-е годы", year_lo=1960, year_hi=1969,
             place="Бендеры", lat=46.83, lon=29.47),
    RecordIn("balti", title="Piața din Bălți", date_text="1938", year_lo=1938, year_hi=1938, place="Bălți",
             lat=47.76, lon=27.93),
    RecordIn("orhei", title="Orhei, strada principală", date_text="vara 1937", year_lo=1937, year_hi=1937,
             place="Orhei", lat=47.38, lon=28.82),
    RecordIn("xss", title="<script>alert('x')</script> Titlu cu <b>HTML</b>", date_text="1931", year_lo=1931,
             year_hi=1931, description="<img src=x onerror=alert(1)> descriere <a href='javascript:alert(2)'>link</a>",
             place="<i>Cahul</i>", lat=45.9, lon=28.19, url="javascript:alert(3)"),
    RecordIn("undated", title="Вид на город Кишинёв", place="Chișinău", lat=47.03, lon=28.8),
]


SEPIA = {"str-20s", "soroca", "orhei"}


@dataclass
class Catalogue:
    ids: dict[str, int]
    original: str
    colorized: str
    model_id: int
    crawl_run: int
    colorization_run: int
    extra: dict = field(default_factory=dict)


def fill(engine, settings=None) -> Catalogue:
    """Fill an empty, migrated catalogue (blobs under the current ARHIVA_HOME)."""
    store = get_store(settings)
    with session_scope(engine) as s:
        src_id = get_or_create_source(s, "pastvu", "pastvu", "https://pastvu.com").id
    with activity("crawl", "pastvu", {"region": "moldova"}, engine=engine, source_id=src_id) as crawl1:
        with session_scope(engine) as s:
            report = upsert_records(s, src_id, RECORDS, run_id=crawl1.id, collection="moldova")
        crawl1.stats = {"new": report.new}
    run1 = crawl1.id
    ids = dict(report.ids)
    with activity("crawl", "pastvu", {"region": "moldova"}, engine=engine, source_id=src_id) as crawl2:
        with session_scope(engine) as s:  # a second crawl changes one record: a revision
            changed = RecordIn(**{**RECORDS[0].__dict__, "title": "Catedrala Mitropolitană „Nașterea Domnului”",
                                  "raw": {"cid": 1001, "title": "new"}})
            upsert_records(s, src_id, [changed], run_id=crawl2.id)
        crawl2.stats = {"changed": 1}
    run2 = crawl2.id
    with activity("training", "train-flow", {"epochs": 12}, engine=engine) as training:
        training.stats = {"val_psnr": 24.1}
    with session_scope(engine) as s:
        seeds = {}
        for i, rec in enumerate(RECORDS):
            key = rec.source_key
            if key == "undated":
                continue  # a record without an image
            seeds[key] = 10 + i
            orig = register_image(s, store, photo(10 + i, "sepia" if key in SEPIA else "grey"))
            link_asset(s, ids[key], orig.sha256, "original", source_url=f"https://pastvu.com/_p/d/{key}.jpg",
                       run_id=run1)
        first = register_image(s, store, photo(seeds["cat-1935"], "grey"))
        ckpt = register_file(s, store, b"fake checkpoint bytes", "application/octet-stream", {"format": "safetensors"})
        mv = ModelVersion(name="unet-r18-2026-06", checkpoint_sha256=ckpt.sha256, architecture="unet-resnet18",
                          config={"width": 64}, metrics={"psnr": 24.1}, training_run_id=training.id)
        s.add(mv)
        s.flush()
        mv_id = mv.id
    with activity("colorization", "colorize-flow", {"collection": "moldova"}, engine=engine,
                  model_version_id=mv_id) as colorization:
        crun = colorization.id
        with session_scope(engine) as s:
            result = register_image(s, store, photo(seeds["cat-1935"], "colour"))
            link_asset(s, ids["cat-1935"], result.sha256, "colorized")
            s.add(Colorization(source_sha256=first.sha256, result_sha256=result.sha256, model_version_id=mv_id,
                               params_hash="p" * 64, params={"render_size": 256}, run_id=crun,
                               record_id=ids["cat-1935"], status="done"))
        colorization.stats = {"done": 1}
    return Catalogue(ids=ids, original=first.sha256, colorized=result.sha256, model_id=mv_id, crawl_run=run1,
                     colorization_run=crun, extra={"second_crawl": run2})


@pytest.fixture(scope="module", name="web_catalogue")
def web_catalogue_fixture(engine, pg_url, tmp_path_factory):
    """One filled catalogue for a whole test module (tests that change it put it back)."""
    from catalog.settings import reset_settings_cache

    mp = pytest.MonkeyPatch()
    mp.setenv("ARHIVA_HOME", str(tmp_path_factory.mktemp("web-home")))
    mp.setenv("ARHIVA_DATABASE_URL", pg_url)
    mp.delenv("ARHIVA_WEB_TOKEN", raising=False)
    reset_settings_cache()
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    try:
        yield fill(engine)
    finally:
        mp.undo()
        reset_settings_cache()
