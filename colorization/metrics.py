"""Quality metrics: PSNR and SSIM on RGB, mean CIEDE2000, colourfulness (Hasler-Suesstrunk).

``evaluate`` colorizes colour photos from their lightness alone and reports the model next to
the greyscale baseline (a*b* = 0), plus how much of the baseline's colourfulness gap it closes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from .imageio import ImageSource, load_image

__all__ = [
    "colourfulness",
    "colourfulness_torch",
    "psnr",
    "ssim",
    "ciede2000",
    "image_metrics",
    "greyscale_baseline",
    "evaluate",
    "format_report",
]

METRICS = ("psnr", "ssim", "ciede2000", "colourfulness")


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of an H x W x 3 uint8 image (0 = grey)."""
    a = rgb.astype(np.float64)
    rg = a[..., 0] - a[..., 1]
    yb = 0.5 * (a[..., 0] + a[..., 1]) - a[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def colourfulness_torch(rgb: torch.Tensor) -> torch.Tensor:
    """The same for a batch (N, 3, H, W) in [0, 1], on the 0-255 scale; returns (N,)."""
    a = rgb.float() * 255.0
    rg = a[:, 0] - a[:, 1]
    yb = 0.5 * (a[:, 0] + a[:, 1]) - a[:, 2]
    std = torch.sqrt(rg.flatten(1).var(1, unbiased=False) + yb.flatten(1).var(1, unbiased=False))
    mean = torch.sqrt(rg.flatten(1).mean(1) ** 2 + yb.flatten(1).mean(1) ** 2)
    return std + 0.3 * mean


def psnr(truth: np.ndarray, pred: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(truth, pred, data_range=255))


def ssim(truth: np.ndarray, pred: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(truth, pred, channel_axis=2, data_range=255))


def ciede2000(truth: np.ndarray, pred: np.ndarray) -> float:
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(deltaE_ciede2000(rgb2lab(truth), rgb2lab(pred)).mean())


def image_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """All metrics of one prediction against its ground truth (both H x W x 3 uint8)."""
    if truth.shape != pred.shape:
        raise ValueError(f"shapes differ: {truth.shape} vs {pred.shape}")
    return {
        "psnr": psnr(truth, pred),
        "ssim": ssim(truth, pred),
        "ciede2000": ciede2000(truth, pred),
        "colourfulness": colourfulness(pred),
    }


def greyscale_baseline(rgb: np.ndarray) -> np.ndarray:
    """The photo's own L with a*b* = 0, as uint8 RGB."""
    from .lab import lab_to_rgb, rgb_to_l

    t = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
    L = rgb_to_l(t)
    out = lab_to_rgb(torch.cat((L, torch.zeros_like(L).expand(2, -1, -1))))
    return (out * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in METRICS}


def evaluate(
    model: Any,
    images: Sequence[ImageSource],
    *,
    render_size: int = 256,
    device: str = "auto",
    batch_size: int = 8,
    crop_boxes: Sequence | None = None,
    keep_outputs: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Colorize colour ``images`` from their lightness and compare with the originals.

    ``model``: a checkpoint path or a :class:`colorization.infer.Colorizer`. Returns
    ``{"n", "model": {metric: mean}, "greyscale": {...}, "truth_colourfulness",
    "colourfulness_gap": {"model", "greyscale"}, "gap_closed", "per_image", "outputs"}``.
    """
    from .infer import Colorizer

    col = model if isinstance(model, Colorizer) else Colorizer(model, device=device, render_size=render_size, batch_size=batch_size)
    rows_m, rows_g, truth_c, per_image, outputs = [], [], [], [], []
    n = len(images)
    for start in range(0, n, batch_size):
        chunk = list(images[start : start + batch_size])
        boxes = list(crop_boxes[start : start + batch_size]) if crop_boxes is not None else None
        truths = [load_image(src).rgb_uint8() for src in chunk]
        preds = col.colorize([_rgb_pil(t) for t in truths], crop_boxes=boxes)
        for k, (truth, pred_img) in enumerate(zip(truths, preds)):
            pred = np.asarray(pred_img.convert("RGB"))
            grey = greyscale_baseline(truth)
            m, g = image_metrics(truth, pred), image_metrics(truth, grey)
            rows_m.append(m)
            rows_g.append(g)
            truth_c.append(colourfulness(truth))
            per_image.append({"image": str(chunk[k]) if not hasattr(chunk[k], "size") else f"#{start + k}", "model": m, "greyscale": g})
            if len(outputs) < keep_outputs:
                outputs.append((grey, pred, truth))
        if progress:
            progress(min(start + batch_size, n), n)
    if not rows_m:
        raise ValueError("no images to evaluate")
    model_s, grey_s = _summary(rows_m), _summary(rows_g)
    truth_mean = float(np.mean(truth_c))
    gap_m = model_s["colourfulness"] - truth_mean
    gap_g = grey_s["colourfulness"] - truth_mean
    return {
        "n": len(rows_m),
        "render_size": col.render_size,
        "model": model_s,
        "greyscale": grey_s,
        "truth_colourfulness": truth_mean,
        "colourfulness_gap": {"model": gap_m, "greyscale": gap_g},
        "gap_closed": float(1.0 - abs(gap_m) / abs(gap_g)) if gap_g else float("nan"),
        "per_image": per_image,
        "outputs": outputs,
    }


def _rgb_pil(arr: np.ndarray):
    from PIL import Image

    return Image.fromarray(arr, "RGB")


def format_report(report: dict[str, Any], name: str = "model") -> str:
    """A markdown table of an ``evaluate`` report."""
    lines = [
        "| | PSNR (dB) ↑ | SSIM ↑ | CIEDE2000 ↓ | colourfulness | gap to truth |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, key in ((name, "model"), ("greyscale (a*b* = 0)", "greyscale")):
        s = report[key]
        lines.append(
            f"| {label} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['ciede2000']:.2f} | "
            f"{s['colourfulness']:.1f} | {report['colourfulness_gap'][key]:+.1f} |"
        )
    lines.append(
        f"\n{report['n']} images, render size {report['render_size']}, ground-truth colourfulness "
        f"{report['truth_colourfulness']:.1f}; the model closes {100 * report['gap_closed']:.0f}% "
        "of the greyscale baseline's colourfulness gap."
    )
    return "\n".join(lines)
