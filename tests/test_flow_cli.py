"""flows.cli.flow_cmds and flows.cli.flowrun as a user meets them: options out of bounds refused in
one line before anything is stored, the live progress line of a training and of a colorization
(kept when the run ends), and the clear words for a photo or a checkpoint missing from the store."""
from __future__ import annotations

import io
import time
from types import SimpleNamespace

import pytest
from rich.console import Console
from sqlalchemy import func, select
from typer.testing import CliRunner

from catalog.db import session_scope
from catalog.models import ColorizationRun, TrainingRun
from flows.cli import app, flowrun
from tests.cli_user import run as run_arhiva


@pytest.mark.parametrize("args, option", [
    (["colorize", "-c", "big", "--claim-size", "99999999999999999999"], "--claim-size"),  # reached SQL's LIMIT
    (["colorize", "-c", "big", "--batch-size", "99999999999999999999"], "--batch-size"),  # claims 4 x batch size
    (["colorize", "-c", "big", "--limit", "99999999999999999999"], "--limit"),
    (["colorize", "-c", "big", "--render-size", "8"], "--render-size"),  # failed the run at the model's load
    (["colorize", "-c", "big", "--render-size", "100000"], "--render-size"),
    (["colorize", "-c", "big", "--runs", "1000000"], "--runs"),
    (["train", "-c", "big", "--batch-size", "100000"], "--batch-size"),
    (["train", "-c", "big", "--crop-size", "32"], "--crop-size"),  # a batch of one stopped the training midway
    (["train", "-c", "big", "--width", "100000"], "--width"),
    (["train", "-c", "big", "--stage1-epochs", "99999999999"], "--stage1-epochs"),
    (["train", "-c", "big", "--min-photos", "0"], "--min-photos"),  # a failed run for nothing to do
    (["train", "-c", "big", "--min-photos", "-5"], "--min-photos"),
])
def test_options_out_of_bounds_are_refused_before_anything_is_stored(env, args, option):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and f"Invalid value for '{option}'" in r.output, r.output
    assert "Traceback" not in r.output and "SELECT" not in r.output and len(r.output) < 1000
    with session_scope(env) as s:
        assert s.execute(select(func.count()).select_from(ColorizationRun)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(TrainingRun)).scalar_one() == 0


def test_the_colorize_flow_refuses_sizes_out_of_bounds_too():
    """A schedule or a work pool's flow run takes the flow's parameters without the command line."""
    from flows.cli import flow_cmds
    from flows.colorize import SIZE_BOUNDS, check_sizes

    assert SIZE_BOUNDS == {"limit": flow_cmds.MAX_PHOTOS, "batch_size": flow_cmds.MAX_COLORIZE_BATCH,
                           "claim_size": flow_cmds.MAX_CLAIM, "render_size": flow_cmds.MAX_RENDER}

    with pytest.raises(ValueError, match=r"^claim_size 99999999999999999999: must be from 1 to 10,000$"):
        check_sizes(claim_size=99999999999999999999)
    with pytest.raises(ValueError, match="batch_size 0: must be from 1"):
        check_sizes(batch_size=0)
    check_sizes(limit=None, batch_size=8, claim_size=None, render_size=256)
    from flows.colorize import colorize_flow

    with pytest.raises(ValueError, match=r"^claim_size 99999999999999999999: must be from 1 to 10,000$"):
        colorize_flow.fn(collection="big", claim_size=99999999999999999999)  # before any catalogue is opened


@pytest.mark.parametrize("command", ["colorize", "train"])
def test_an_unknown_device_is_refused_before_a_run_starts(env, command):
    """It was found inside the run: the run failed, and the status said the work had failed (1)."""
    r = CliRunner().invoke(app, [command, "-c", "big", "--device", "gpu0"])
    assert r.exit_code == 2, r.output
    assert r.stderr.strip() == "error: --device 'gpu0': unknown device; use auto, cpu, cuda (or cuda:N) or mps"
    with session_scope(env) as s:
        assert s.execute(select(func.count()).select_from(ColorizationRun)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(TrainingRun)).scalar_one() == 0


# -- the progress line ------------------------------------------------------------------------

@pytest.fixture()
def terminal(monkeypatch):
    """The watcher's console as a terminal (its progress line shows only there)."""
    screen = Console(file=io.StringIO(), force_terminal=True, force_interactive=True, width=200)
    monkeypatch.setattr(flowrun, "err", screen)
    return screen


def _line(watcher, until, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = watcher.bar.tasks[0].description
        if until(line):
            return line
        time.sleep(0.05)
    return watcher.bar.tasks[0].description


def test_colorize_progress_keeps_its_last_count_when_the_run_ends(env, arhiva_env, terminal):
    """The run's final stats hold no ``progress``: the line jumped back to ``0 / ?`` before ``interrupted:``."""
    from catalog.runs import activity
    from flows.cli.flow_cmds import describe_colorization

    with flowrun.RunWatcher("colorization", describe_colorization, every=0.05) as watcher:
        assert watcher.ready.wait(10)
        with pytest.raises(KeyboardInterrupt):
            with activity("colorization", "test", {}, engine=env, stats=lambda: {"photos": 3}) as run:
                run.stats = {"progress": {"photos": 3, "pending_before": 5}}
                run.save_stats()
                assert "3 / 5 photo(s)" in _line(watcher, lambda d: "3 / 5" in d)
                raise KeyboardInterrupt
        time.sleep(0.5)  # polls after the run ended
        assert _line(watcher, lambda d: False, timeout=0.3) == f"colorization run {run.id}: 3 / 5 photo(s) colorized"
    with session_scope(env) as s:
        assert s.get(ColorizationRun, run.id).status == "cancelled"


def test_training_progress_is_stored_as_it_goes_and_shown(env, arhiva_env, terminal):
    """``arhiva train`` printed nothing for the whole training: the run now stores its stage, epoch and
    step as it goes, and the command shows them."""
    from catalog.runs import activity
    from colorization.config import TrainConfig
    from flows.cli.flow_cmds import describe_training
    from flows.train import TrainingProgress

    with flowrun.RunWatcher("training", describe_training, every=0.05) as watcher:
        assert watcher.ready.wait(10)
        with activity("training", "test", {}, engine=env, stats=lambda: {"status": "succeeded"}) as run:
            report = TrainingProgress(run, TrainConfig(stage1_epochs=1, stage2_epochs=2), every=0)
            assert _line(watcher, lambda d: "reading" in d) == f"training run {run.id}: reading the photos…"
            report({"event": "start", "steps_per_epoch": 4, "resumed_epoch": 0, "train_images": 7})
            report({"event": "step", "stage": 1, "epoch": 0, "step": 2})
            assert _line(watcher, lambda d: "step 2" in d) == \
                f"training run {run.id}: stage 1, epoch 1 / 3, step 2 / 12"
            report({"event": "epoch", "stage": 1, "epoch": 0, "step": 4})
            report({"event": "step", "stage": 2, "epoch": 1, "step": 6})
            assert _line(watcher, lambda d: "step 6" in d) == \
                f"training run {run.id}: stage 2, epoch 2 / 3, step 6 / 12"
            with session_scope(env) as s:
                stored = s.get(TrainingRun, run.id).stats["progress"]
            assert stored | {"phase": "training", "stage": 2, "epoch": 1, "epochs": 3, "step": 6, "steps": 12} == stored
            report.phase("judging it on 2 held-out photo(s)")
            assert _line(watcher, lambda d: "judging" in d) == \
                f"training run {run.id}: judging it on 2 held-out photo(s)…"
        time.sleep(0.3)
        assert "judging" in watcher.bar.tasks[0].description  # kept once the run ended


def test_training_progress_survives_what_it_cannot_store_or_read(env, arhiva_env, monkeypatch):
    """Progress is for the eye: a catalogue that refuses the write, or an event without the keys it
    reads, never stops a training; after a failed write it waits before asking again; with no
    validation photos it never says it is calibrating (nothing is calibrated then)."""
    from catalog.runs import activity
    from colorization.config import TrainConfig
    from flows.train import TrainingProgress

    with activity("training", "test", {}, engine=env) as run:
        cfg = TrainConfig(stage1_epochs=1, stage2_epochs=0, head="classes")
        report = TrainingProgress(run, cfg, validating=False, every=0)
        report({"event": "start", "steps_per_epoch": 2})
        report({"event": "epoch", "stage": 1, "epoch": 0, "step": 2})
        assert report.state["phase"] == "training" and report.state["epoch"] == 1
        report({"event": "step"})  # no stage, step or epoch: ignored
        tries = []

        def refused():
            tries.append(1)
            raise RuntimeError("the catalogue does not answer")

        monkeypatch.setattr(run, "save_stats", refused)
        report.phase("registering the model version")
        report.phase("judging it on 2 held-out photo(s)")
        assert len(tries) == 1  # one try, then quiet for a while
        assert TrainingProgress(run, cfg, validating=True, every=0).calibrates != report.calibrates


def test_train_command_watches_its_run(monkeypatch):
    """``arhiva train`` runs its flow inside a RunWatcher of the training run (as colorize does)."""
    import flows.cli.flow_cmds as flow_cmds
    import flows.train

    watched = []

    class Watcher:
        def __init__(self, kind, describe, **kw):
            watched.append((kind, describe))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(flowrun, "RunWatcher", Watcher)
    monkeypatch.setattr(flowrun, "flow_session", lambda: __import__("contextlib").nullcontext())
    monkeypatch.setattr(flows.train, "train_flow", lambda **kw: {"status": "skipped", "reason": "none", "run_id": 1})
    r = CliRunner().invoke(flow_cmds.app, ["train", "-c", "x"])
    assert r.exit_code == 0, r.output
    assert watched == [("training", flow_cmds.describe_training)]


def test_no_empty_line_before_an_error_off_a_terminal(arhiva_env, env, tmp_path):
    """Off a terminal the progress line shows nothing, and leaves no empty line before ``error:``."""
    import os

    environ = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"))
    for command in ("colorize", "train"):
        r = run_arhiva([command, "--collection", "nope", "--device", "cpu"], environ)
        assert r.code == 2 and r.err == "error: no collection named 'nope'\n", r


# -- a blob missing from the store --------------------------------------------------------------

def test_a_missing_photo_blob_is_said_in_words(tmp_path):
    from catalog.blobs import LocalBlobStore
    from flows.colorize import _colorize

    store = LocalBlobStore(tmp_path / "blobs")
    sha = store.put_bytes(b"not even an image")
    store.path(sha).unlink()

    class Engine:
        batch_size = 8

        def colorize(self, sources, crop_boxes=None):
            return sources

    done, ((ref, why),) = _colorize(Engine(), store, [SimpleNamespace(sha256=sha, crop_box=None, record_ids=[4])])
    assert done == [] and ref.sha256 == sha
    assert why == (f"the stored image file of photo {sha[:12]}… is missing ({store.path(sha)}; "
                   "arhiva blobs verify lists such files)")


@pytest.mark.parametrize("side", [110, 250])  # over the limit, and over twice it (Pillow's own refusal)
def test_a_photo_over_a_pixel_limit_lowered_since_its_import_fails_in_words(tmp_path, monkeypatch, side):
    """Between the limit and twice it Pillow only warned, and the photo was colorized anyway."""
    from PIL import Image

    from catalog.blobs import LocalBlobStore
    from catalog.imaging import use_pixel_limit
    from flows.colorize import _colorize
    from tests.helpers import jpeg_bytes

    store = LocalBlobStore(tmp_path / "blobs")
    small, big = store.put_bytes(jpeg_bytes(seed=1, grey=True)), store.put_bytes(jpeg_bytes(seed=2, size=(side, 100)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # put back after the test
    use_pixel_limit(10_000)  # as the flow sets ARHIVA_MAX_IMAGE_PIXELS, lowered since the import

    class Engine:
        batch_size = 8

        def colorize(self, sources, crop_boxes=None):
            return [s.load() and s for s in sources]

    refs = [SimpleNamespace(sha256=sha, crop_box=None, record_ids=[i]) for i, sha in enumerate((small, big))]
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no DecompressionBombWarning either
        done, ((ref, why),) = _colorize(Engine(), store, refs)
    assert [d[0].sha256 for d in done] == [small] and ref.sha256 == big
    pixels = f"{side}×100 = {side * 100:,} pixels" if side < 200 else f"{side * 100:,} pixels"
    assert why == f"image is {pixels}, over the limit of 10,000 (ARHIVA_MAX_IMAGE_PIXELS; decompression-bomb guard)"


def test_a_missing_checkpoint_names_its_model_version(tmp_path):
    from catalog.blobs import LocalBlobStore
    from flows.train import checkpoint_path

    store = LocalBlobStore(tmp_path / "blobs")
    mv = SimpleNamespace(name="fonds-v3", checkpoint_sha256="c611" + "0" * 60)
    with pytest.raises(LookupError) as caught:
        checkpoint_path(store, mv)
    assert str(caught.value) == (f"the checkpoint of model version fonds-v3 (c61100000000…) is missing from the "
                                 f"blob store {store.url} (arhiva blobs verify lists missing files)")
    sha = store.put_bytes(b"weights")
    assert checkpoint_path(store, SimpleNamespace(name="fonds-v4", checkpoint_sha256=sha)) == store.path(sha)
