"""Prefect flows end to end: crawl → train → colorize a year range, idempotence, sharing, kill and
re-run, and the provenance chain of every result. Real Prefect engine (test harness), real
PostgreSQL, the fake PastVu server, a tiny real model on the CPU."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from catalog.assets import get_store
from catalog.db import session_scope
from catalog.models import Asset, Colorization, ColorizationRun, ModelVersion, Record, RecordAsset, TrainingExample
from catalog.provenance import lineage
from crawlers.settings import LOCAL_PROFILE
from tests.pastvu_server import CHISINAU, FakePastvu, generate_photos, strip_height

pytestmark = pytest.mark.slow  # the quick lane: pytest -m "not slow"

FAST = LOCAL_PROFILE | {"CONCURRENT_REQUESTS_PER_DOMAIN": 4, "ARHIVA_BATCH_SIZE": 10, "LOG_LEVEL": "WARNING"}
YEARS = (1920, 1950)


@pytest.fixture(scope="module")
def prefect():
    from prefect.testing.utilities import prefect_test_harness

    from flows import prefect_env  # noqa: F401

    with prefect_test_harness(server_startup_timeout=120):
        from prefect.settings import PREFECT_API_URL

        yield PREFECT_API_URL.value()


def _image(photo, size):
    """Colour photos for even cids (training material), greyscale prints for odd ones; strip below."""
    w, h = (photo["w"], photo["h"]) if size == "a" else (photo["ws"], photo["hs"])
    strip = strip_height(h)
    rng = np.random.default_rng(photo["cid"])
    y, x = np.mgrid[0:h, 0:w]
    if photo["cid"] % 2 == 0:
        rgb = np.stack([120 + 100 * np.sin(x / 9.0), 110 + 90 * np.cos(y / 7.0), 90 + 60 * np.sin((x + y) / 13.0)], -1)
    else:
        g = 100 + 80 * np.sin(x / 8.0) * np.cos(y / 10.0)
        rgb = np.stack([g, g, g], -1)
    rgb = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype("uint8")
    band = np.full((strip, w, 3), 150, "uint8")
    buf = io.BytesIO()
    Image.fromarray(np.concatenate([rgb, band], 0)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pastvu():
    photos = generate_photos(28, seed=11, non_public=0.0, no_geo=0.0, w=72, h=56)
    for i, p in enumerate(photos.values()):  # half the years inside the asked range, half outside
        p["year"] = p["year2"] = 1925 + i if i % 4 < 2 else 1960 + i
        p["y"] = str(p["year"])
    with FakePastvu(photos, image_maker=_image) as server:
        yield server


def _crawl(pastvu):
    from flows.crawl import crawl_flow

    params = {"bbox": ",".join(map(str, CHISINAU)), "api_url": pastvu.api_url, "tile_size": 0.02,
              "collection": "moldova"}
    return crawl_flow(spider="pastvu", params=params, settings=FAST | pastvu.allow, retries=0)


def _train():
    from flows.train import train_flow

    return train_flow(collection="moldova", stage1_epochs=1, stage2_epochs=1, crop_size=64, batch_size=4,
                      width=16, device="cpu", min_photos=2, num_workers=0)


def _colorize(**kw):
    from flows.colorize import colorize_flow

    return colorize_flow(**({"collection": "moldova", "years": f"{YEARS[0]}-{YEARS[1]}", "batch_size": 3,
                             "render_size": 64, "device": "cpu"} | kw))


def _expected(engine) -> set[int]:
    """Greyscale originals of active records whose years overlap the asked range."""
    with session_scope(engine) as s:
        rows = s.execute(select(Record.id, Record.year_lo, Record.year_hi, Asset.is_colour)
                         .join(RecordAsset, (RecordAsset.record_id == Record.id) & (RecordAsset.role == "original"))
                         .join(Asset, Asset.sha256 == RecordAsset.asset_sha256)).all()
    return {rid for rid, lo, hi, colour in rows if not colour and lo <= YEARS[1] and hi >= YEARS[0]}


def _colorized(engine) -> dict[int, list[str]]:
    with session_scope(engine) as s:
        out: dict[int, list[str]] = {}
        for rid, sha in s.execute(select(RecordAsset.record_id, RecordAsset.asset_sha256)
                                  .where(RecordAsset.role == "colorized")):
            out.setdefault(rid, []).append(sha)
        return out


def test_nothing_to_do_is_a_completed_run_that_says_so(prefect, arhiva_env, clean_db):
    """Colorizing before any model exists, or training without enough colour photos, is not a failure.
    The runs name the collection as stored (NFC), though given it decomposed (as a macOS folder)."""
    import unicodedata

    from catalog.ingest import get_or_create_collection
    from catalog.models import ColorizationRun, TrainingRun
    from flows.colorize import colorize_flow
    from flows.train import train_flow

    empty = "goal\u0103"  # ă: a with breve, composed
    with session_scope(clean_db) as s:
        get_or_create_collection(s, empty)
    given = unicodedata.normalize("NFD", empty)
    state = colorize_flow(collection=given, years="1920-1940", return_state=True)
    assert state.is_completed() and "nothing to do: no model version yet" in state.message
    assert state.result()["status"] == "skipped"
    summary = train_flow(collection=given, min_photos=4)
    assert summary["status"] == "skipped" and "fewer than 4" in summary["reason"]
    with session_scope(clean_db) as s:
        (crun,) = s.execute(select(ColorizationRun)).scalars().all()
        (trun,) = s.execute(select(TrainingRun)).scalars().all()
        assert crun.status == trun.status == "skipped"
        assert "no model version yet" in crun.stats["note"] and "fewer than 4" in trun.stats["note"]
        assert crun.parameters["collection"] == trun.parameters["collection"] == empty
        assert f"in {empty!r}" in trun.stats["note"]
    with pytest.raises(LookupError, match="no collection named 'nope'"):
        colorize_flow(collection="nope")


def test_training_with_no_new_photo_is_nothing_to_do_whatever_min_photos_says(prefect, arhiva_env, clean_db):
    """``min_photos=0`` with no new colour photo failed the run with "no images given"."""
    from catalog.ingest import get_or_create_collection
    from catalog.models import TrainingRun
    from flows.train import train_flow

    with session_scope(clean_db) as s:
        get_or_create_collection(s, "big")
    summary = train_flow(collection="big", min_photos=0)
    assert summary["status"] == "skipped" and summary["reason"] == (
        "no new colour photos in 'big' (none that an earlier model version has not used)")
    with session_scope(clean_db) as s:
        (run,) = s.execute(select(TrainingRun)).scalars().all()
        assert run.status == "skipped" and run.error is None and "no new colour photos" in run.stats["note"]


@pytest.fixture(scope="module")
def trained(prefect, pastvu, tmp_path_factory, pg_url):
    """One crawl and one training for the module (the expensive part), on a fresh catalogue."""
    from catalog.models import Base
    from catalog.settings import reset_settings_cache

    home = tmp_path_factory.mktemp("home")
    old = {k: os.environ.get(k) for k in ("ARHIVA_HOME", "ARHIVA_DATABASE_URL")}
    os.environ.update(ARHIVA_HOME=str(home), ARHIVA_DATABASE_URL=pg_url)
    reset_settings_cache()
    from catalog.db import get_engine

    engine = get_engine()
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
                             + " RESTART IDENTITY CASCADE")
    crawl = _crawl(pastvu)
    train = _train()
    yield {"engine": engine, "crawl": crawl, "train": train, "home": home, "api": prefect, "pg_url": pg_url}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    reset_settings_cache()


def test_crawl_then_train_registers_a_model_version_with_lineage(trained):
    assert trained["crawl"]["status"] == "succeeded"
    assert trained["crawl"]["records"]["new"] == 28
    summary = trained["train"]
    assert summary["status"] == "succeeded" and summary["model_version"] == "moldova-v1"
    engine = trained["engine"]
    with session_scope(engine) as s:
        mv = s.execute(select(ModelVersion)).scalar_one()
        examples = s.execute(select(TrainingExample).where(TrainingExample.model_version_id == mv.id)).scalars().all()
        colour = set(s.execute(select(Asset.sha256).where(Asset.is_colour.is_(True))).scalars())
        assert {e.asset_sha256 for e in examples} == colour  # exactly the colour photos, all of them
        assert {e.split for e in examples} == {"train", "val"}
        assert mv.metrics and "val_psnr" in mv.metrics
        # the first version becomes current, judged on its validation photos (the held-out set from now on)
        assert summary["promoted"] is True and mv.is_current and mv.decision.startswith("current")
        held = {p["sha256"] for p in mv.evaluation["heldout"]}
        assert held and held <= {e.asset_sha256 for e in examples if e.split == "val"}
        assert {"ciede2000", "false_colour", "hue_error"} <= set(mv.evaluation["metrics"])
        assert mv.evaluation["greyscale"]["false_colour"] == 0.0
        ckpt = s.get(Asset, mv.checkpoint_sha256)
        assert ckpt.media_type.startswith("application/") and get_store().path(ckpt.sha256).is_file()
    # a second training finds no unused colour photo: nothing to train
    again = _train()
    assert again["status"] == "skipped"


def test_colorize_year_range_then_nothing_more_to_do(trained):
    engine = trained["engine"]
    expected = _expected(engine)
    assert len(expected) >= 4
    first = _colorize()
    assert first["status"] == "succeeded" and first["photos"] == len(expected)
    done = _colorized(engine)
    assert set(done) == expected  # the right records, and only those
    store = get_store()
    with session_scope(engine) as s:
        for rid, shas in done.items():
            assert len(shas) == 1
            orig = s.execute(select(Asset).join(RecordAsset, RecordAsset.asset_sha256 == Asset.sha256)
                             .where(RecordAsset.record_id == rid, RecordAsset.role == "original")).scalar_one()
            res = s.get(Asset, shas[0])
            assert (res.width, res.height) == (orig.width, orig.height)  # the original's size, strip included
            with Image.open(store.path(res.sha256)) as im:
                assert im.size == (orig.width, orig.height)
    second = _colorize()
    assert second["photos"] == 0  # a second run does nothing
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Colorization)).scalar_one() == len(expected)


def test_every_result_walks_back_to_the_crawls(trained):
    engine = trained["engine"]
    done = _colorized(engine)
    assert done
    with session_scope(engine) as s:
        for rid in done:
            chain = lineage(s, rid)
            assert chain["record"]["first_seen_run_id"] is not None
            assert chain["originals"] and chain["originals"][0]["first_seen_run_id"] is not None
            (c,) = chain["colorizations"]
            assert c["colorization_run_id"] and c["model_version"] == "moldova-v1" and c["training_run_id"]
            assert c["training_examples"], "model version without training assets"
            for e in c["training_examples"]:
                assert e["record_id"] and e["source"] == "pastvu"
                assert e["asset_first_crawl_run_id"] == trained["crawl"]["run_id"]
                assert (e["first_run_id"], e["first_run_kind"]) == (trained["crawl"]["run_id"], "crawl")  # a harvest
    from typer.testing import CliRunner

    from flows.cli import app

    r = CliRunner().invoke(app, ["records", "--id", str(next(iter(done))), "--provenance"])
    assert r.exit_code == 0, r.output
    assert "model version moldova-v1" in r.stdout and "training run" in r.stdout and "crawl run" in r.stdout


def _reset_colorizations(engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM record_assets WHERE role = 'colorized'")
        conn.exec_driver_sql("DELETE FROM colorizations")


def test_two_workers_share_the_work_without_duplicates(trained):
    engine = trained["engine"]
    _reset_colorizations(engine)
    expected = _expected(engine)
    results: list[dict] = []
    errors: list[BaseException] = []

    def worker():
        try:
            results.append(_colorize(batch_size=1))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors
    assert sum(r["photos"] for r in results) == len(expected)  # nothing done twice
    assert set(_colorized(engine)) == expected
    with session_scope(engine) as s:
        n = s.execute(select(func.count()).select_from(Colorization)).scalar_one()
        runs = s.execute(select(func.count()).select_from(ColorizationRun)
                         .where(ColorizationRun.status == "succeeded")).scalar_one()
    assert n == len(expected) and runs >= 2


def test_a_run_killed_midway_is_finished_by_the_next(trained):
    engine = trained["engine"]
    _reset_colorizations(engine)
    expected = _expected(engine)
    code = ("import os, time\n"
            "from flows.colorize import colorize_flow, colorize_batch\n"
            "orig = colorize_batch.fn\n"
            "def slow(*a, **k):\n"
            "    out = orig(*a, **k)\n"
            "    time.sleep(1.0)\n"
            "    return out\n"
            "colorize_batch.fn = slow\n"
            f"colorize_flow(collection='moldova', years='{YEARS[0]}-{YEARS[1]}', batch_size=1, claim_size=1,"
            " render_size=64, device='cpu')\n")
    env = dict(os.environ, PREFECT_API_URL=trained["api"])
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(_colorized(engine)) < 2:
            time.sleep(0.2)
        assert len(_colorized(engine)) >= 2, "the worker never got going"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    partial = _colorized(engine)
    assert 0 < len(partial) < len(expected)
    rerun = _colorize()
    assert rerun["photos"] == len(expected) - len(partial)
    final = _colorized(engine)
    assert set(final) == expected and all(len(v) == 1 for v in final.values())
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Colorization)).scalar_one() == len(expected)
        assert s.execute(select(func.count()).select_from(Colorization)
                         .where(Colorization.status != "done")).scalar_one() == 0


def test_a_bad_photo_is_recorded_as_failed_and_the_rest_go_on(trained):
    from typer.testing import CliRunner

    from flows.cli import app
    from flows.prefect_env import bind_console

    def cli(*argv):
        try:
            return CliRunner().invoke(app, list(argv))
        finally:
            bind_console()  # Prefect's console back on this test's stderr (the runner's is closed)

    engine = trained["engine"]
    _reset_colorizations(engine)
    expected = _expected(engine)
    with session_scope(engine) as s:
        originals = dict(s.execute(select(RecordAsset.record_id, RecordAsset.asset_sha256)
                                   .where(RecordAsset.role == "original", RecordAsset.record_id.in_(expected))).all())
    missing_rid, broken_rid, replaced_rid = sorted(expected)[:3]
    store = get_store()
    missing, broken = store.path(originals[missing_rid]), store.path(originals[broken_rid])
    replaced = store.path(originals[replaced_rid])
    kept = {p: p.read_bytes() for p in (missing, broken, replaced)}
    missing.rename(missing.with_name(missing.name + ".away"))  # a blob gone from the store
    broken.chmod(0o644)
    broken.write_bytes(kept[broken][:200])  # a blob cut short on disk (its hash no longer matches)
    replaced.chmod(0o644)
    replaced.write_bytes(kept[broken])  # another photo, whole: it was colorized as this record's
    args = ["colorize", "--collection", "moldova", "--years", f"{YEARS[0]}-{YEARS[1]}", "--batch-size", "3",
            "--render-size", "64", "--device", "cpu"]
    try:
        r = cli(*args)
        assert r.exit_code == 1, r.output  # something failed…
        assert set(_colorized(engine)) == expected - {missing_rid, broken_rid, replaced_rid}  # …the rest went on
        # the store's own words, not Python's ("FileNotFoundError: [Errno 2] No such file or directory: …")
        gone = f"the stored image file of photo {originals[missing_rid][:12]}… is missing ({missing}; arhiva blobs verify"
        assert "not colorized" in r.output and gone in " ".join(r.output.split()), r.output
        assert "FileNotFoundError" not in r.output and "Errno" not in r.output
        with session_scope(engine) as s:
            failed = dict(s.execute(select(Colorization.record_id, Colorization.error)
                                    .where(Colorization.status == "failed")).all())
            run = s.execute(select(ColorizationRun).order_by(ColorizationRun.id.desc())).scalars().first()
        assert set(failed) == {missing_rid, broken_rid, replaced_rid}
        assert failed[missing_rid].startswith(gone) and failed[broken_rid]
        assert failed[replaced_rid].startswith(f"the stored file of photo {originals[replaced_rid][:12]}… no longer "
                                               "matches its hash")
        assert run.status == "partial" and run.stats["failed"] == 3 and len(run.stats["failures"]) == 3
        runs = cli("runs", "--kind", "colorization", "-n", "1")
        assert "failed=3" in runs.stdout
        assert _colorize()["photos"] == 0  # recorded failures are skipped…
    finally:
        missing.with_name(missing.name + ".away").rename(missing)
        broken.write_bytes(kept[broken])
        replaced.write_bytes(kept[replaced])
    again = cli(*args, "--retry-failed")  # …unless asked
    assert again.exit_code == 0, again.output
    assert set(_colorized(engine)) == expected
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Colorization)
                         .where(Colorization.status != "done")).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(Colorization)
                         .where(Colorization.error.is_not(None))).scalar_one() == 0


def test_another_machine_colorizes_from_s3_after_migrate(trained, s3_url, tmp_path, monkeypatch):
    """The local store moved into S3; a worker with its own empty ARHIVA_HOME gets the model by its hash,
    colorizes from the bucket and writes its results and artifact there, nothing under its blobs/."""
    from typer.testing import CliRunner

    from catalog.settings import reset_settings_cache
    from flows.cli import app

    engine = trained["engine"]
    _reset_colorizations(engine)
    moved = CliRunner().invoke(app, ["blobs", "migrate", "--to", s3_url, "--json"])
    assert moved.exit_code == 0, moved.output
    worker = tmp_path / "worker-home"
    monkeypatch.setenv("ARHIVA_HOME", str(worker))
    monkeypatch.setenv("ARHIVA_BLOBS", s3_url)
    reset_settings_cache()
    try:
        result = _colorize()
        assert result["photos"] == len(_expected(engine))
        store = get_store()
        done = _colorized(engine)
        assert set(done) == _expected(engine)
        assert all(store.exists(sha) for shas in done.values() for sha in shas)
        assert store.exists(result["grid_sha256"])
        with session_scope(engine) as s:
            ckpt = s.execute(select(ModelVersion.checkpoint_sha256)).scalar_one()
        assert (worker / "cache" / "blobs" / "sha256" / ckpt[:2] / ckpt[2:4] / ckpt).is_file()  # fetched once
        assert not (worker / "blobs").exists()
    finally:
        monkeypatch.undo()
        reset_settings_cache()


def _version_with_other_weights(engine, tmp_path, name: str) -> str:
    """Register a second model version: the first one's network, made to paint orange."""
    import torch

    from catalog.assets import register_file
    from catalog.model_versions import register_model_version
    from colorization.checkpoint import load_checkpoint, save_checkpoint
    from flows.train import CHECKPOINT_MEDIA_TYPE

    store = get_store()
    with session_scope(engine) as s:
        v1 = s.execute(select(ModelVersion).where(ModelVersion.name == "moldova-v1")).scalar_one()
        gen, meta = load_checkpoint(store.path(v1.checkpoint_sha256))
        with torch.no_grad():
            gen.classifier.weight.zero_()
            gen.classifier.bias.fill_(-10.0)
            gen.classifier.bias[int(((gen.ab_centres - torch.tensor([40.0, 60.0])) ** 2).sum(1).argmin())] = 10.0
        path = save_checkpoint(tmp_path / "v2.safetensors", gen, meta)
        asset = register_file(s, store, path.read_bytes(), CHECKPOINT_MEDIA_TYPE, {"model_version": name})
        register_model_version(s, name=name, checkpoint_sha256=asset.sha256, architecture=v1.architecture,
                               config=v1.config, metrics={}, training_run_id=None, parent_id=v1.id, train=[], val=[])
    return name


def _shown(engine) -> dict[int, tuple[str, str]]:
    """record id -> (shown colorized sha256, the model version that made it)."""
    with session_scope(engine) as s:
        rows = s.execute(select(RecordAsset.record_id, RecordAsset.asset_sha256, ModelVersion.name)
                         .join(Colorization, Colorization.result_sha256 == RecordAsset.asset_sha256)
                         .join(ModelVersion, ModelVersion.id == Colorization.model_version_id)
                         .where(RecordAsset.shown)).all()
    return {rid: (sha, name) for rid, sha, name in rows}


def test_one_current_model_promoted_results_shown_older_kept(trained, tmp_path):
    from typer.testing import CliRunner

    from catalog.exports import csv_row
    from catalog.web.iiif import build_manifest
    from flows.cli import app

    engine = trained["engine"]
    _reset_colorizations(engine)
    expected = _expected(engine)
    _colorize()
    assert {name for _, name in _shown(engine).values()} == {"moldova-v1"} and set(_shown(engine)) == expected
    _version_with_other_weights(engine, tmp_path, "moldova-v2")
    assert _colorize()["photos"] == 0  # a new version that is not current colorizes nothing by default

    run = CliRunner()
    r = run.invoke(app, ["models", "promote", "moldova-v2"])
    assert r.exit_code == 0, r.output
    again = _colorize()  # the current version now: everything again, and its results are the ones shown
    assert again["photos"] == len(expected) and again["model_version"] == "moldova-v2"
    shown = _shown(engine)
    assert set(shown) == expected and {name for _, name in shown.values()} == {"moldova-v2"}
    assert all(len(v) == 2 for v in _colorized(engine).values())  # v1's results kept as history
    with session_scope(engine) as s:
        rid = next(iter(expected))
        rec = s.get(Record, rid)
        manifest = build_manifest(rec, "http://x/")
        choice = manifest["items"][0]["items"][0]["items"][0]["body"]["items"]
        assert choice[0]["label"]["en"] == ["Original"]
        assert shown[rid][0] in choice[1]["id"]
        assert csv_row(rec)["colorized_sha256"].split()[0] == shown[rid][0]

    r = run.invoke(app, ["models", "rollback", "moldova-v1"])
    assert r.exit_code == 0, r.output
    assert {name for _, name in _shown(engine).values()} == {"moldova-v1"}  # its results shown again
    r = run.invoke(app, ["models"])
    assert r.exit_code == 0 and "rolled back to by hand" in r.output and "current: moldova-v1" in r.output
    r = run.invoke(app, ["models", "--json"])
    rows = {m["name"]: m for m in __import__("json").loads(r.output)}
    assert rows["moldova-v1"]["current"] and not rows["moldova-v2"]["current"]
    assert rows["moldova-v1"]["heldout"]["metrics"]["ciede2000"] > 0

    # another version's results (asked for by name) never replace what a record shows
    other = _colorize(model="moldova-v2", vivid=0.9)
    assert other["photos"] == len(expected)
    assert {name for _, name in _shown(engine).values()} == {"moldova-v1"}
    with session_scope(engine) as s:
        params = {tuple(sorted(p.items())) for p in s.execute(select(Colorization.params)).scalars()}
    assert {dict(p)["vivid"] for p in params} == {0.0, 0.9}  # the default is conservative

    for bad in (["models", "rollback", "nope"], ["models", "promote", "nope"]):
        r = run.invoke(app, bad)
        assert r.exit_code == 2 and "no model version named 'nope'" in r.output
