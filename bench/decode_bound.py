"""Is the decoding the limit? Every decoding of one trained engine, scored on validation and held-out photos.

A trained classes-head engine predicts a distribution over a*b* bins per pixel; how it is turned
into colour (``colorization.chroma``: temperature T, shrinkage k where the belief is spread,
chroma gain) is fitted on the validation photos (``colorization.calibrate``). This script scores
a wider grid than the calibration's on both the validation photos and the held-out ones, with
and without test-time views (the photo flipped, and at 1.25x / 0.75x size): their distributions
are averaged and their disagreement ``var_between`` shrinks chroma as well (``k2``):
``ab = g * mu * |mu|^2 / (|mu|^2 + k * var_within + k2 * var_between)``.

It prints, for 1, 2 and 4 views, the decoding that the validation photos pick (least validation
CIEDE2000 restoring at least 50% / 60% of the colourfulness gap) with its held-out numbers, and
the **oracle**: the least held-out CIEDE2000 among decodings restoring at least half the held-out
colourfulness, chosen on the held-out photos themselves. No fair decoding can do better than the
oracle; when the oracle stays above greyscale's CIEDE2000, the model, not its decoding, is what
keeps the engine from the goal.

    python bench/decode_bound.py bench/out/quality_cpu/runs/engine/best.safetensors --data .gpudata/photos

CPU only, one thread; about 40 minutes on a 2-core machine for the whole grid (``--views 1,2`` for less).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from colorization import lab  # noqa: E402
from colorization.checkpoint import load_checkpoint  # noqa: E402
from colorization.data import split_paths  # noqa: E402
from colorization.imageio import list_images, load_image  # noqa: E402
from colorization.metrics import _lab, colourfulness, greyscale_baseline  # noqa: E402

VIEWS = ((1.0, False), (1.0, True), (1.25, False), (0.75, True))  # (scale, flipped)
GAINS = (0.8, 1.0, 1.3, 1.6, 2.0, 2.5, 3.0, 3.5)


@torch.inference_mode()
def photo(gen, src, render_size: int) -> dict:
    """The photo's logits under each view (back on the photo's grid) and its reference numbers."""
    from skimage.color import deltaE_ciede2000

    img = Image.fromarray(load_image(src).rgb_uint8())
    s = render_size / min(img.size)
    img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.Resampling.LANCZOS)
    rgb = np.array(img)
    h, w = rgb.shape[:2]
    L = lab.uint8_to_l(torch.from_numpy(rgb).permute(2, 0, 1))[0]
    logits = []
    for scale, flip in VIEWS:
        hh, ww = round(h * scale), round(w * scale)
        x = F.interpolate(L[None, None], size=(hh, ww), mode="bilinear", antialias=True, align_corners=False)
        hp, wp = -(-hh // 32) * 32, -(-ww // 32) * 32
        x = F.pad(lab.normalize_l(x), (0, wp - ww, 0, hp - hh), mode="replicate")
        lg = gen.logits(x.flip(-1) if flip else x).float()
        lg = lg.flip(-1) if flip else lg
        lg = F.interpolate(lg, size=(hp, wp), mode="bilinear", align_corners=False)[:, :, :hh, :ww]
        logits.append(F.interpolate(lg, size=(h, w), mode="bilinear", align_corners=False))
    grey = greyscale_baseline(rgb)
    truth = _lab(rgb)
    return {"logits": logits, "L": L, "truth": truth, "truth_cf": colourfulness(rgb), "grey_cf": colourfulness(grey),
            "grey_ciede": float(deltaE_ciede2000(truth, _lab(grey)).mean())}


def decode(ph: dict, centres: torch.Tensor, t: float, k: float, k2: float, views: int) -> torch.Tensor:
    ps = [F.softmax(lg / t, dim=1) for lg in ph["logits"][:views]]
    mus = [torch.einsum("nqhw,qc->nchw", p, centres) for p in ps]
    mu = sum(mus) / len(mus)
    pbar = sum(ps) / len(ps)
    var_in = (torch.einsum("nqhw,q->nhw", pbar, (centres**2).sum(1)) - (mu**2).sum(1)).clamp_min(0)
    var_b = sum(((m - mu) ** 2).sum(1) for m in mus) / len(mus)
    power = (mu**2).sum(1)
    return (mu * (power / (power + k * var_in + k2 * var_b + 1e-6))[:, None])[0]


def score(photos: list[dict], centres, t, k, k2, views) -> dict[float, tuple[float, float]]:
    """gain -> (mean CIEDE2000, share of the colourfulness gap closed)."""
    from skimage.color import deltaE_ciede2000

    per = {g: [] for g in GAINS}
    for ph in photos:
        base = decode(ph, centres, t, k, k2, views)
        for g in GAINS:
            rgb = lab.lab_to_rgb_uint8(ph["L"], (base * g).clamp(-110, 110)).permute(1, 2, 0).numpy()
            per[g].append((float(deltaE_ciede2000(ph["truth"], _lab(rgb)).mean()), colourfulness(rgb)))
    truth = np.mean([p["truth_cf"] for p in photos])
    gap = abs(np.mean([p["grey_cf"] for p in photos]) - truth)
    return {g: (float(np.mean([v[0] for v in r])), float(1 - abs(np.mean([v[1] for v in r]) - truth) / gap))
            for g, r in per.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, default=Path(".gpudata/photos"))
    ap.add_argument("--val-fraction", type=float, default=0.05, help="as in bench/quality.py (the same split)")
    ap.add_argument("--render-size", type=int, default=128)
    ap.add_argument("--views", default="1,2,4", help="numbers of test-time views to try")
    args = ap.parse_args()
    torch.set_num_threads(1)
    gen, _ = load_checkpoint(args.checkpoint)
    if getattr(gen, "head_kind", None) != "classes":
        sys.exit("only a classes-head engine has a decoding to explore")
    _, val = split_paths(list_images(args.data / "train"), args.val_fraction)
    val = [photo(gen, p, args.render_size) for p in val]
    held = [photo(gen, p, args.render_size) for p in list_images(args.data / "heldout")]
    print(f"greyscale CIEDE2000: validation {np.mean([p['grey_ciede'] for p in val]):.2f}, "
          f"held-out {np.mean([p['grey_ciede'] for p in held]):.2f}\n")
    print("| views | chosen by | T | k | k2 | gain | validation CIEDE2000 / gap | held-out CIEDE2000 / gap |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    c = gen.ab_centres
    for nv in (int(v) for v in args.views.split(",")):
        rows = []
        for t, k, k2 in itertools.product((1.0, 1.3, 1.7), (0.0, 2.0, 8.0), (0.0, 4.0, 16.0, 64.0) if nv > 1 else (0.0,)):
            sv, sh = score(val, c, t, k, k2, nv), score(held, c, t, k, k2, nv)
            rows += [(t, k, k2, g, *sv[g], *sh[g]) for g in GAINS]
        picks = [(f"validation, gap ≥ {m:.0%}", min((r for r in rows if r[5] >= m), key=lambda r: r[4], default=None))
                 for m in (0.5, 0.6)]
        picks.append(("**oracle**: held-out, gap ≥ 50%", min((r for r in rows if r[7] >= 0.5), key=lambda r: r[6], default=None)))
        for name, r in picks:
            if r is not None:
                print(f"| {nv} | {name} | {r[0]:g} | {r[1]:g} | {r[2]:g} | {r[3]:g} | {r[4]:.2f} / {r[5]:.0%} | {r[6]:.2f} / {r[7]:.0%} |",
                      flush=True)


if __name__ == "__main__":
    main()
