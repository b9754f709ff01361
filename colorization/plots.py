"""PNG loss curves and before/after grids drawn with Pillow (no matplotlib)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["plot_curves", "image_grid"]

_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def _panel(draw: ImageDraw.ImageDraw, box, title: str, series: dict[str, list[tuple[float, float]]]):
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=(0, 0, 0))
    draw.text((x0 + 4, y0 + 2), title, fill=(0, 0, 0))
    pts = [p for s in series.values() for p in s if math.isfinite(p[1])]
    if not pts:
        draw.text((x0 + 4, (y0 + y1) // 2), "nothing logged in this run", fill=(90, 90, 90))
        return
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    xmin, xmax = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    ymin, ymax = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    pad_t, pad_b, pad_l = 16, 14, 48
    draw.text((x0 + 2, y0 + pad_t), f"{ymax:.3g}", fill=(90, 90, 90))
    draw.text((x0 + 2, y1 - pad_b - 10), f"{ymin:.3g}", fill=(90, 90, 90))
    draw.text((x1 - 60, y1 - pad_b + 1), f"{xmax:.0f}", fill=(90, 90, 90))

    def to_px(x, y):
        px = x0 + pad_l + (x - xmin) / (xmax - xmin) * (x1 - x0 - pad_l - 8)
        py = y1 - pad_b - (y - ymin) / (ymax - ymin) * (y1 - y0 - pad_t - pad_b - 4)
        return px, py

    for k, (name, s) in enumerate(series.items()):
        c = _COLOURS[k % len(_COLOURS)]
        line = [to_px(x, y) for x, y in s if math.isfinite(y)]
        if len(line) > 1:
            draw.line(line, fill=c, width=2)
        elif line:
            draw.ellipse([line[0][0] - 2, line[0][1] - 2, line[0][0] + 2, line[0][1] + 2], fill=c)
        draw.text((x0 + pad_l + 4 + 110 * k, y0 + 2 + 10), name, fill=c)


def plot_curves(records: Sequence[dict], path: str | Path, x_key: str = "step") -> Path:
    """Training losses (per logged step) and validation metrics (per epoch) as one PNG."""
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val" and "val_l1" in r]  # none without validation photos
    adversarial = ("adversarial", {"G": [(r[x_key], r["g_gan"]) for r in train if "g_gan" in r],
                                   "D": [(r[x_key], r["d"]) for r in train if "d" in r]})
    if not adversarial[1]["G"] and any("ce" in r for r in train):
        # the classes head without a discriminator (class_gan_weight 0): its loss is the cross-entropy
        adversarial = ("cross-entropy (a*b* classes)", {"train": [(r[x_key], r["ce"]) for r in train if "ce" in r]})
    panels = [
        ("L1 (ab/110)", {"train": [(r[x_key], r["l1"]) for r in train], "val": [(r[x_key], r["val_l1"]) for r in val]}),
        adversarial,
        ("val PSNR (dB)", {"psnr": [(r[x_key], r["val_psnr"]) for r in val]}),
        ("val colourfulness", {"pred": [(r[x_key], r["val_colourfulness"]) for r in val],
                               "truth": [(r[x_key], r["val_colourfulness_truth"]) for r in val]}),
    ]
    w, h = 900, 560
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    for i, (title, series) in enumerate(panels):
        cx, cy = i % 2, i // 2
        _panel(draw, (cx * w // 2 + 4, cy * h // 2 + 4, (cx + 1) * w // 2 - 4, (cy + 1) * h // 2 - 4), title, series)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def image_grid(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], path: str | Path, cell: int = 160) -> Path:
    """One row per example, one column per label; arrays are H x W x 3 uint8."""
    n_cols = len(labels)
    top = 16
    img = Image.new("RGB", (cell * n_cols, top + cell * len(rows)), "white")
    draw = ImageDraw.Draw(img)
    for c, label in enumerate(labels):
        draw.text((c * cell + 4, 2), label, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, arr in enumerate(row):
            tile = Image.fromarray(arr)
            tile.thumbnail((cell, cell), Image.Resampling.LANCZOS)
            img.paste(tile, (c * cell + (cell - tile.width) // 2, top + r * cell + (cell - tile.height) // 2))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)
    return path
