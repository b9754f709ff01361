"""colorization.train: overfitting, exact resume, outputs; colorization.data determinism."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.checkpoint import load_checkpoint, read_metadata
from colorization.data import CropDataset, split_paths
from colorization.train import TrainConfig, train

pytestmark = pytest.mark.slow  # the quick lane: pytest -m "not slow"

torch.set_num_threads(2)


def make_photos(folder, n=8, size=(48, 40)):
    """Synthetic colour photos: each has its own hue and its own texture."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        hue = rng.random(3) * 200 + 30
        freq = 0.2 + 0.15 * i
        tex = 0.5 + 0.5 * np.sin(freq * xx + (i % 3) * yy * 0.3)
        img = np.clip(hue[None, None, :] * (0.4 + 0.6 * tex[..., None]), 0, 255).astype(np.uint8)
        p = folder / f"photo_{i}.png"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def tiny_config(**kw):
    base = dict(crop_size=64, batch_size=4, stage1_epochs=1, stage2_epochs=1, width=8, blocks=(1, 1, 1, 1), ndf=8,
                num_workers=0, log_every=1, samples_per_epoch=8, lr_stage1=2e-3, lr_g=1e-3, device="cpu",
                calibration_size=32)
    base.update(kw)
    return TrainConfig(**base)


def train_losses(history):
    return [(r["stage"], r["step"], r.get("l1"), r.get("g_gan"), r.get("d")) for r in history if r["kind"] == "train"]


@pytest.mark.parametrize("head, loss", [("classes", "ce"), ("regression", "l1")])
def test_tiny_generator_overfits(tmp_path, head, loss):
    """Each head learns eight photos: its own training loss falls to under half within 250 steps.

    The classes head is trained on cross-entropy over chroma bins; the L1 of its annealed mean
    follows much later, so each head is judged on the loss it is trained on. Augmentation is off
    so that the same crops come back and the net can memorise them.
    """
    paths = make_photos(tmp_path / "photos")
    cfg = tiny_config(batch_size=8, stage1_epochs=1, stage2_epochs=0, samples_per_epoch=8 * 250, head=head,
                      augment=False)
    res = train(cfg, paths, paths[:2], tmp_path / "run")
    values = [r[loss] for r in res.history if r["kind"] == "train"]
    assert len(values) == 250
    first, last = np.mean(values[:10]), np.mean(values[-10:])
    assert last <= 0.5 * first, (first, last)


class Crash(Exception):
    pass


def test_resume_continues_the_same_loss_curve(tmp_path):
    paths = make_photos(tmp_path / "photos")
    cfg = tiny_config(stage1_epochs=2, stage2_epochs=2)
    straight = train(cfg, paths[:6], paths[6:], tmp_path / "a")

    def crash_after_third_epoch(ev):
        if ev["event"] == "epoch" and ev["epoch"] == 2:
            raise Crash

    with pytest.raises(Crash):
        train(cfg, paths[:6], paths[6:], tmp_path / "b", progress=crash_after_third_epoch)
    assert read_metadata(tmp_path / "b" / "model.safetensors")["epoch"] == 3
    resumed = train(cfg, paths[:6], paths[6:], tmp_path / "b", resume=True)
    assert resumed.epochs == straight.epochs == 4
    assert train_losses(resumed.history) == train_losses(straight.history)
    assert {r["stage"] for r in straight.history} == {1, 2}
    logged = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert train_losses(logged) == train_losses(straight.history)
    ga, _ = load_checkpoint(straight.checkpoint)
    gb, _ = load_checkpoint(resumed.checkpoint)
    for (k, a), b in zip(ga.state_dict().items(), gb.state_dict().values()):
        assert torch.equal(a, b), k


def test_resuming_with_another_architecture_says_which_setting_changed(tmp_path):
    paths = make_photos(tmp_path / "photos", n=6)
    train(tiny_config(stage2_epochs=0), paths[:4], paths[4:], tmp_path / "run")
    log = (tmp_path / "run" / "log.jsonl").read_text()
    with pytest.raises(ValueError, match=r"trained with width 8 \(now 16\); resume it with those settings"):
        train(tiny_config(stage2_epochs=0, width=16), paths[:4], paths[4:], tmp_path / "run", resume=True)
    assert (tmp_path / "run" / "log.jsonl").read_text() == log  # was torch's 20 kB size-mismatch report


def test_outputs_metadata_and_reference_recipe(tmp_path):
    paths = make_photos(tmp_path / "photos", n=6)
    res = train(tiny_config(recipe="reference"), paths[:4], paths[4:], tmp_path / "ref")
    out = tmp_path / "ref"
    for name in ("model.safetensors", "train_state.pt", "log.jsonl", "curves.png", "samples/epoch_000.png", "samples/epoch_001.png"):
        assert (out / name).is_file(), name
    meta = read_metadata(res.checkpoint)
    assert meta["arch"]["name"] == "fastai-unet-resnet18"
    assert meta["config"]["recipe"] == "reference" and len(meta["data"]["fingerprint"]) == 64
    assert {"torch", "torchvision", "numpy", "scikit-image"} <= set(meta["versions"])
    assert "val_psnr" in meta["metrics"]
    assert Image.open(out / "curves.png").size == (900, 560)


def test_classes_head_calibrates_its_decoding_on_the_validation_photos(tmp_path):
    paths = make_photos(tmp_path / "photos", n=6)
    events = []
    res = train(tiny_config(), paths[:4], paths[4:], tmp_path / "c", progress=events.append)
    dec = read_metadata(res.checkpoint)["decode"]
    assert dec["photos"] == 2 and dec["temperature"] > 0 and dec["gain"] > 0 and "val_ciede2000" in dec
    assert load_checkpoint(res.checkpoint).generator.calibration == {k: dec[k] for k in ("temperature", "shrinkage", "gain")}
    assert [e for e in events if e["event"] == "calibrated"]
    off = train(tiny_config(calibrate=False), paths[:4], paths[4:], tmp_path / "off")
    assert "decode" not in read_metadata(off.checkpoint)


def test_time_limit_and_fine_tuning(tmp_path):
    paths = make_photos(tmp_path / "photos", n=6)
    cfg = tiny_config(stage1_epochs=None, stage1_seconds=0.5, stage2_epochs=0, samples_per_epoch=4000)
    res = train(cfg, paths[:4], paths[4:], tmp_path / "t")
    assert res.epochs == 1 and 0 < res.steps < 1000
    frozen = tiny_config(stage1_epochs=1, stage2_epochs=0, lr_stage1=0.0)
    tuned = train(frozen, paths[:4], paths[4:], tmp_path / "ft", init_checkpoint=res.checkpoint)
    g0, _ = load_checkpoint(res.checkpoint)
    g1, meta = load_checkpoint(tuned.checkpoint)
    assert torch.equal(g0.stem[0].weight, g1.stem[0].weight)
    assert meta["parent"] == str(res.checkpoint)
    with pytest.raises(ValueError, match="architecture"):
        train(tiny_config(width=16), paths[:4], paths[4:], tmp_path / "bad", init_checkpoint=res.checkpoint)


def test_crops_are_deterministic_and_cover_the_epoch(tmp_path):
    paths = make_photos(tmp_path / "photos", n=5, size=(70, 50))
    ds = CropDataset(paths, 32, samples_per_epoch=12, seed=3, cache=False)
    ds.set_epoch(1)
    a = [ds[i] for i in range(12)]
    ds.set_epoch(2)
    ds.set_epoch(1)
    b = [ds[i] for i in reversed(range(12))][::-1]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (3, 32, 32) and a[0].dtype == torch.uint8
    ds.set_epoch(2)
    assert not all(torch.equal(x, ds[i]) for i, x in enumerate(a))
    ref = CropDataset(paths, 32, samples_per_epoch=4, lab_on_cpu=True, cache=True)
    L, ab = ref[0]
    assert L.shape == (1, 32, 32) and ab.shape == (2, 32, 32) and -1 <= L.min() and L.max() <= 1


def test_split_is_deterministic():
    names = [f"img_{i}.jpg" for i in range(200)]
    tr, va = split_paths(names, 0.1)
    tr_r, va_r = split_paths(list(reversed(names)), 0.1)
    assert set(tr_r) == set(tr) and set(va_r) == set(va)
    assert 5 < len(va) < 40
    tr2, va2 = split_paths(names + ["new.jpg"], 0.1)
    assert set(va) <= set(va2)
    assert not set(tr) & set(va) and len(tr) + len(va) == 200
