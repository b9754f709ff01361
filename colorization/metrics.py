"""Quality metrics: PSNR and SSIM on RGB, mean CIEDE2000, colourfulness (Hasler-Suesstrunk), and
the two that show what an archivist objects to: the false-colour area and the hue error.

- **false-colour area**: the share of an image's pixels whose predicted chroma C*ab is above
  ``FALSE_COLOUR_PRED`` (20) where the truth's is below ``FALSE_COLOUR_TRUTH`` (8): colour painted
  on what was grey (the magenta and green blotches). Greyscale scores 0.
- **hue error**: mean absolute difference of hue angle (degrees, 0-180) over the truth's strongly
  coloured pixels (C*ab >= ``STRONG_CHROMA``, 20). A predicted pixel with no hue to speak of
  (C*ab < ``HUELESS``, 2) counts 90 degrees, the expected error of a guess, so greyscale scores 90
  and a model only scores better by getting hues right. Images with no strongly coloured pixel
  have no hue error (NaN; left out of means).

``evaluate`` colorizes colour photos from their lightness alone and reports the model, per photo
and on average, next to the greyscale baseline (a*b* = 0) and optionally a reference model, plus
how much of the greyscale baseline's colourfulness gap each closes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .imageio import ImageSource, load_image

__all__ = [
    "colourfulness",
    "colourfulness_torch",
    "psnr",
    "ssim",
    "ciede2000",
    "false_colour_area",
    "hue_error",
    "image_metrics",
    "greyscale_baseline",
    "evaluate",
    "worst_images",
    "format_report",
]

METRICS = ("psnr", "ssim", "ciede2000", "colourfulness", "false_colour", "hue_error")
FALSE_COLOUR_PRED, FALSE_COLOUR_TRUTH = 20.0, 8.0
STRONG_CHROMA, HUELESS = 20.0, 2.0


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


def _lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(rgb)


def ciede2000(truth: np.ndarray, pred: np.ndarray, *, truth_lab=None, pred_lab=None) -> float:
    from skimage.color import deltaE_ciede2000

    t = _lab(truth) if truth_lab is None else truth_lab
    p = _lab(pred) if pred_lab is None else pred_lab
    return float(deltaE_ciede2000(t, p).mean())


def _chroma(lab: np.ndarray) -> np.ndarray:
    return np.hypot(lab[..., 1], lab[..., 2])


def false_colour_area(truth_lab: np.ndarray, pred_lab: np.ndarray) -> float:
    """Share of pixels with predicted C*ab > 20 where the truth's C*ab < 8 (Lab arrays, H x W x 3)."""
    return float(((_chroma(pred_lab) > FALSE_COLOUR_PRED) & (_chroma(truth_lab) < FALSE_COLOUR_TRUTH)).mean())


def hue_error(truth_lab: np.ndarray, pred_lab: np.ndarray) -> float:
    """Mean |hue difference| in degrees over the truth's strongly coloured pixels (NaN if none)."""
    strong = _chroma(truth_lab) >= STRONG_CHROMA
    if not strong.any():
        return float("nan")
    t, p = truth_lab[strong], pred_lab[strong]
    d = np.abs(np.arctan2(t[:, 2], t[:, 1]) - np.arctan2(p[:, 2], p[:, 1]))
    d = np.degrees(np.minimum(d, 2 * np.pi - d))
    d[_chroma(p) < HUELESS] = 90.0
    return float(d.mean())


def image_metrics(truth: np.ndarray, pred: np.ndarray, truth_lab: np.ndarray | None = None) -> dict[str, float]:
    """All metrics of one prediction against its ground truth (both H x W x 3 uint8)."""
    if truth.shape != pred.shape:
        raise ValueError(f"shapes differ: {truth.shape} vs {pred.shape}")
    t_lab = _lab(truth) if truth_lab is None else truth_lab
    p_lab = _lab(pred)
    return {
        "psnr": psnr(truth, pred),
        "ssim": ssim(truth, pred),
        "ciede2000": ciede2000(truth, pred, truth_lab=t_lab, pred_lab=p_lab),
        "colourfulness": colourfulness(pred),
        "false_colour": false_colour_area(t_lab, p_lab),
        "hue_error": hue_error(t_lab, p_lab),
    }


def greyscale_baseline(rgb: np.ndarray) -> np.ndarray:
    """The photo's own L with a*b* = 0, as uint8 RGB."""
    from .lab import lab_to_rgb, rgb_to_l

    t = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
    L = rgb_to_l(t)
    out = lab_to_rgb(torch.cat((L, torch.zeros_like(L).expand(2, -1, -1))))
    return (out * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    out = {}
    for k in METRICS:
        vals = [r[k] for r in rows if not math.isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def _colorizer(model: Any, **kwargs):
    from .infer import Colorizer

    return model if isinstance(model, Colorizer) else Colorizer(model, **kwargs)


def _name(src: Any, i: int) -> str:
    return Path(src).stem if isinstance(src, (str, Path)) else f"#{i}"


def evaluate(
    model: Any,
    images: Sequence[ImageSource],
    *,
    reference: Any | None = None,
    render_size: int = 256,
    device: str = "auto",
    batch_size: int = 8,
    crop_boxes: Sequence | None = None,
    keep_outputs: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Colorize colour ``images`` from their lightness and compare with the originals.

    ``model`` (and ``reference``, optional): a checkpoint path or a
    :class:`colorization.infer.Colorizer`. Returns ``{"n", "render_size", "systems", "model":
    {metric: mean}, "greyscale": {...}, "reference": {...}?, "truth_colourfulness",
    "colourfulness_gap": {system: gap}, "gap_closed" (the model's), "gap_closed_by": {system:
    share}, "per_image": [{"image", "truth_colourfulness", system: {metric: value}}], "outputs":
    [{"image", "greyscale", "model", "reference"?, "truth"} uint8 arrays, the first keep_outputs]}``.
    """
    kw = {"device": device, "render_size": render_size, "batch_size": batch_size}
    systems = {"model": _colorizer(model, **kw)}
    if reference is not None:
        systems["reference"] = _colorizer(reference, **kw)
    rows: dict[str, list] = {k: [] for k in (*systems, "greyscale")}
    truth_c, per_image, outputs = [], [], []
    n = len(images)
    for start in range(0, n, batch_size):
        chunk = list(images[start : start + batch_size])
        boxes = list(crop_boxes[start : start + batch_size]) if crop_boxes is not None else None
        truths = [load_image(src).rgb_uint8() for src in chunk]
        preds = {k: [np.asarray(im.convert("RGB")) for im in col.colorize([_rgb_pil(t) for t in truths], crop_boxes=boxes)]
                 for k, col in systems.items()}
        for k, truth in enumerate(truths):
            t_lab = _lab(truth)
            outs = {"greyscale": greyscale_baseline(truth)} | {s: preds[s][k] for s in systems}
            row = {"image": _name(chunk[k], start + k), "truth_colourfulness": colourfulness(truth)}
            for s, img in outs.items():
                row[s] = image_metrics(truth, img, t_lab)
                rows[s].append(row[s])
            truth_c.append(row["truth_colourfulness"])
            per_image.append(row)
            if len(outputs) < keep_outputs:
                outputs.append({"image": row["image"], **outs, "truth": truth})
        if progress:
            progress(min(start + batch_size, n), n)
    if not per_image:
        raise ValueError("no images to evaluate")
    truth_mean = float(np.mean(truth_c))
    report: dict[str, Any] = {"n": len(per_image), "render_size": systems["model"].render_size,
                              "systems": ["model", *(["reference"] if reference is not None else []), "greyscale"],
                              "truth_colourfulness": truth_mean}
    gaps = {}
    for s, r in rows.items():
        report[s] = _summary(r)
        gaps[s] = report[s]["colourfulness"] - truth_mean
    report["colourfulness_gap"] = gaps
    report["gap_closed_by"] = {s: float(1.0 - abs(g) / abs(gaps["greyscale"])) if gaps["greyscale"] else float("nan")
                               for s, g in gaps.items()}
    report["gap_closed"] = report["gap_closed_by"]["model"]
    report["per_image"] = per_image
    report["outputs"] = outputs
    return report


def worst_images(report: dict[str, Any], n: int = 5, metric: str = "ciede2000", system: str = "model") -> list[int]:
    """Indices into ``report["per_image"]`` of the ``n`` photos where ``system`` does worst."""
    sign = -1.0 if metric in ("psnr", "ssim") else 1.0  # how "worse" grows

    def badness(i: int) -> float:
        v = report["per_image"][i][system][metric]
        return -math.inf if math.isnan(v) else sign * v

    order = sorted(range(len(report["per_image"])), key=badness, reverse=True)
    return order[:n]


def _rgb_pil(arr: np.ndarray):
    from PIL import Image

    return Image.fromarray(arr, "RGB")


LABELS = {"model": "model", "reference": "reference recipe", "greyscale": "greyscale (a*b* = 0)"}
HEADER = ("| | PSNR (dB) ↑ | SSIM ↑ | CIEDE2000 ↓ | false colour ↓ | hue error (°) ↓ | colourfulness | "
          "gap closed |")


def metric_cells(s: dict[str, float], gap_closed: float) -> str:
    """One table row's cells (after the label) in ``HEADER``'s order."""
    return (f"{s['psnr']:.2f} | {s['ssim']:.4f} | {s['ciede2000']:.2f} | {100 * s['false_colour']:.2f}% | "
            f"{s['hue_error']:.1f} | {s['colourfulness']:.1f} | {100 * gap_closed:.0f}% |")


def format_report(report: dict[str, Any], name: str = "model") -> str:
    """A markdown table of an ``evaluate`` report (averages over the photos)."""
    lines = [HEADER, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key in report["systems"]:
        label = name if key == "model" else LABELS[key]
        lines.append(f"| {label} | " + metric_cells(report[key], report["gap_closed_by"][key]))
    lines.append(
        f"\n{report['n']} images, render size {report['render_size']}, ground-truth colourfulness "
        f"{report['truth_colourfulness']:.1f}; false colour = share of pixels with predicted C*ab > 20 where the "
        "truth's < 8; hue error over the truth's pixels with C*ab >= 20 (no hue = 90°)."
    )
    return "\n".join(lines)
