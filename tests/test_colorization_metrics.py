"""colorization.metrics: the metric definitions and evaluate's model-vs-greyscale report."""

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.infer import Colorizer
from colorization.metrics import (
    ciede2000,
    colourfulness,
    colourfulness_torch,
    evaluate,
    format_report,
    greyscale_baseline,
    image_metrics,
)

torch.set_num_threads(2)


def test_colourfulness_definition():
    grey = np.full((10, 10, 3), 120, np.uint8)
    assert colourfulness(grey) == 0.0
    half = np.zeros((10, 10, 3), np.uint8)
    half[:, :5] = [255, 0, 0]
    half[:, 5:] = [0, 255, 0]
    # rg = +-255 (std 255, mean 0); yb = 127.5 everywhere (std 0, mean 127.5)
    assert colourfulness(half) == pytest.approx(255 + 0.3 * 127.5)
    dull = (half.astype(int) // 4 + 96).astype(np.uint8)
    assert colourfulness(dull) < colourfulness(half)
    t = torch.from_numpy(np.stack([half, dull])).permute(0, 3, 1, 2).float() / 255
    assert torch.allclose(colourfulness_torch(t), torch.tensor([colourfulness(half), colourfulness(dull)]), rtol=1e-4)


def test_identical_images_score_perfectly():
    img = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    m = image_metrics(img, img)
    assert m["psnr"] == np.inf and m["ssim"] == pytest.approx(1.0) and m["ciede2000"] == 0.0
    other = img.copy()
    other[..., 0] = 255 - other[..., 0]
    assert ciede2000(img, other) > 5
    with pytest.raises(ValueError):
        image_metrics(img, img[:-1])


def test_greyscale_baseline_keeps_l_and_drops_colour():
    from skimage.color import rgb2lab

    img = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    grey = greyscale_baseline(img)
    assert colourfulness(grey) < 1.0
    assert np.abs(rgb2lab(grey)[..., 0] - rgb2lab(img)[..., 0]).max() < 0.6


class ZeroAB(torch.nn.Module):
    def forward(self, L):
        return torch.zeros(L.shape[0], 2, *L.shape[2:])


class TrueAB(torch.nn.Module):
    """An oracle that returns the chroma of the one photo being evaluated (at render size)."""

    def __init__(self, ab):
        super().__init__()
        self.ab = ab

    def forward(self, L):
        import torch.nn.functional as F

        return F.interpolate(self.ab, size=L.shape[2:], mode="bilinear", align_corners=False)


def _photo(tmp_path):
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:64, 0:96]
    img = np.stack([xx * 2.5, yy * 3.5, 255 - xx * 2], -1) + rng.normal(0, 3, (64, 96, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    p = tmp_path / "p.png"
    Image.fromarray(img).save(p)
    return p, img


def test_evaluate_reports_model_next_to_greyscale(tmp_path):
    p, img = _photo(tmp_path)
    zero = evaluate(Colorizer(generator=ZeroAB(), device="cpu", render_size=64), [p, p])
    assert zero["n"] == 2
    for k in ("psnr", "ssim", "ciede2000", "colourfulness"):
        assert zero["model"][k] == pytest.approx(zero["greyscale"][k], rel=1e-3, abs=1e-3)
    assert zero["gap_closed"] == pytest.approx(0.0, abs=0.02)

    from colorization.lab import normalize_ab, rgb_to_lab

    ab = normalize_ab(rgb_to_lab(torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255)[:, 1:])
    oracle = evaluate(Colorizer(generator=TrueAB(ab), device="cpu", render_size=64), [p], keep_outputs=1)
    assert oracle["model"]["psnr"] > zero["model"]["psnr"] + 5
    assert oracle["model"]["ciede2000"] < zero["model"]["ciede2000"] / 3
    assert oracle["gap_closed"] > 0.9
    assert len(oracle["outputs"]) == 1 and oracle["outputs"][0]["model"].shape == img.shape
    text = format_report(oracle)
    assert "| greyscale (a*b* = 0) |" in text and "PSNR" in text


def _panel_ink(png, box):
    """Pixels of a panel's plot area drawn in a series colour (not black, grey or white)."""
    arr = np.asarray(Image.open(png).convert("RGB"))[box[1]:box[3], box[0]:box[2]].astype(int)
    spread = arr.max(axis=2) - arr.min(axis=2)
    return int((spread > 60).sum())


def test_training_curves_show_the_classes_heads_loss_where_no_discriminator_ran(tmp_path):
    from colorization.plots import plot_curves

    # the default engine (chroma classes, class_gan_weight 0) logs a cross-entropy and no g_gan / d
    classes = [{"kind": "train", "step": s, "l1": 0.1 - s * 1e-4, "ce": 3.0 - s * 1e-3} for s in range(1, 200, 10)]
    gan = [{"kind": "train", "step": s, "l1": 0.1, "g_gan": 1.0 + (s % 3) * 0.1, "d": 0.5} for s in range(1, 200, 10)]
    top_right = (460, 30, 890, 270)
    a = plot_curves(classes, tmp_path / "classes.png")
    b = plot_curves(gan, tmp_path / "gan.png")
    assert _panel_ink(a, top_right) > 100  # was an empty "adversarial" panel
    assert _panel_ink(b, top_right) > 100
