"""colorization.calibrate and the calibrated decoding: the conservative end fitted on validation
photos, kept in the checkpoint, used at vivid 0 only."""

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.calibrate import GRID, calibrate, collect, score
from colorization.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from colorization.chroma import UNCALIBRATED, ab_bins, decode_ab, decode_params
from colorization.infer import Colorizer
from colorization.networks import UNetGenerator

torch.set_num_threads(1)
SMALL = {"temperature": (1.0, 0.5), "shrinkage": (0.0, 2.0), "gain": (0.5, 1.0, 2.0)}


def test_decode_params_go_from_the_calibrated_end_to_the_fixed_vivid_end():
    assert decode_params(0.0) == (1.0, 1.0, 1.0) == tuple(UNCALIBRATED.values())
    cal = {"temperature": 0.5, "shrinkage": 4.0, "gain": 2.0}
    assert decode_params(0.0, cal) == (0.5, 4.0, 2.0)
    t, k, g = decode_params(1.0, cal)
    assert (t, k, g) == pytest.approx(decode_params(1.0))  # vivid 1 is the same for every model
    assert decode_params(0.5, cal) == pytest.approx((0.5**0.5 * 0.2**0.5, 1.0, 2**0.5))
    with pytest.raises(ValueError, match="calibration"):
        decode_params(0.0, {"gain": 0.0})


def test_gain_scales_a_sure_colour_and_grey_stays_grey():
    c = ab_bins(20)
    orange = int(((c - torch.tensor([40.0, 60.0])) ** 2).sum(1).argmin())
    sure = torch.full((1, c.shape[0], 1, 1), -10.0)
    sure[0, orange] = 10.0
    plain = decode_ab(sure, c, 0.0)
    assert decode_ab(sure, c, 0.0, {"gain": 0.5}) == pytest.approx(0.5 * plain, rel=1e-3)
    unsure = torch.zeros(1, c.shape[0], 1, 1)
    assert float(decode_ab(unsure, c, 0.0, {"gain": 2.0, "shrinkage": 1.0}).norm()) < 4.0


def _photos(tmp_path, n=2):
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        img = np.clip(rng.normal(110, 30, (40, 56, 3)) + [60, 20 * i, -40], 0, 255).astype(np.uint8)
        paths.append(tmp_path / f"v{i}.png")
        Image.fromarray(img).save(paths[-1])
    return paths


def _leaning_generator():
    """Predicts the same spread-out belief everywhere, leaning to orange."""
    torch.manual_seed(0)
    g = UNetGenerator(width=8, blocks=(1, 1, 1, 1), head="classes", bin_step=20)
    with torch.no_grad():
        g.classifier.weight.zero_()
        g.classifier.bias.zero_()
        g.classifier.bias[int(((g.ab_centres - torch.tensor([40.0, 60.0])) ** 2).sum(1).argmin())] = 4.0
    return g


def test_calibration_keeps_the_least_error_that_restores_enough_colour(tmp_path):
    g, paths = _leaning_generator(), _photos(tmp_path)
    cal = calibrate(g, paths, render_size=32, min_gap=0.0, grid=SMALL)
    assert {"temperature", "shrinkage", "gain", "val_ciede2000", "val_gap_closed", "val_ciede2000_grey"} <= set(cal)
    assert cal["temperature"] in SMALL["temperature"] and cal["gain"] in SMALL["gain"] and cal["feasible"]
    ph = collect(g, paths, 32)
    everything = [r for t in SMALL["temperature"] for k in SMALL["shrinkage"]
                  for r in score(ph, g.ab_centres, t, k, SMALL["gain"])]
    assert cal["val_ciede2000"] == pytest.approx(min(r["ciede2000"] for r in everything))
    # asking for more colour than any point gives: the most colourful point, marked infeasible
    loud = calibrate(g, paths, render_size=32, min_gap=1.5, grid=SMALL)
    assert not loud["feasible"] and loud["val_gap_closed"] == pytest.approx(max(r["gap_closed"] for r in everything))
    with pytest.raises(ValueError, match="classes"):
        calibrate(UNetGenerator(width=8, blocks=(1, 1, 1, 1)), paths)
    assert set(GRID) == {"temperature", "shrinkage", "gain"}


def test_calibration_travels_in_the_checkpoint_and_sets_vivid_zero(tmp_path):
    g, paths = _leaning_generator(), _photos(tmp_path, 1)
    plain = {v: np.asarray(Colorizer(generator=g, device="cpu", render_size=32, vivid=v).colorize(paths)[0])
             for v in (0.0, 1.0)}
    g.calibration = {"temperature": 0.5, "shrinkage": 0.0, "gain": 2.0}
    save_checkpoint(tmp_path / "m.safetensors", g, {"note": "x"})
    assert read_metadata(tmp_path / "m.safetensors")["decode"] == g.calibration
    loaded, _ = load_checkpoint(tmp_path / "m.safetensors")
    assert loaded.calibration == g.calibration
    cal = {v: np.asarray(Colorizer(tmp_path / "m.safetensors", device="cpu", render_size=32, vivid=v).colorize(paths)[0])
           for v in (0.0, 1.0)}
    assert not np.array_equal(cal[0.0], plain[0.0])  # vivid 0 is the calibrated point
    assert np.array_equal(cal[1.0], plain[1.0])  # vivid 1 is not calibrated
