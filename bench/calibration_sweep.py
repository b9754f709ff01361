"""How much colour vivid 0 should restore: one trained engine, recalibrated at several shares.

``bench/quality.py`` calibrates the engine's vivid 0 on the validation photos: the decoding with
the least CIEDE2000 there among those that restore at least ``calibration_gap`` of their
colourfulness. This script takes the checkpoint a quality run judged, calibrates it again at
each share of ``--gaps`` (same validation photos, same grid), and judges each on the held-out
photos at vivid 0, so the trade between colour restored and CIEDE2000 can be read off one
model:

    python bench/calibration_sweep.py --runs bench/out/quality_cpu/runs --gaps 0.6,0.65,0.7,0.75

Prints a table (validation and held-out numbers for each share). Needs only torch, numpy,
Pillow and scikit-image, like ``bench/quality.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from colorization.calibrate import calibrate  # noqa: E402
from colorization.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from colorization.data import split_paths  # noqa: E402
from colorization.imageio import list_images  # noqa: E402
from colorization.infer import Colorizer  # noqa: E402
from colorization.metrics import evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(".gpudata/photos"), help="folder with train/ and heldout/")
    ap.add_argument("--runs", type=Path, default=Path("bench/out/quality_cpu/runs"), help="a quality run's runs/")
    ap.add_argument("--gaps", default="0.6,0.65,0.7,0.75", help="shares of the colourfulness to restore")
    ap.add_argument("--val-fraction", type=float, default=0.05, help="as the quality run had it")
    ap.add_argument("--render-size", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    _, val_imgs = split_paths(list_images(args.data / "train"), args.val_fraction)
    held = list_images(args.data / "heldout")
    ckpt = args.runs / "engine" / "best.safetensors"
    if not ckpt.exists():
        ckpt = args.runs / "engine" / "model.safetensors"
    print(f"{ckpt}: recalibrated on {len(val_imgs)} validation photos, judged on {len(held)} held-out photos "
          f"at vivid 0, render size {args.render_size}\n")
    print("| calibration gap (validation) | T | k | gain | validation CIEDE2000 (greyscale) | validation gap closed "
          "| held-out CIEDE2000 (greyscale) | held-out gap closed | held-out false colour |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for gap in (float(g) for g in args.gaps.split(",")):
            gen, meta = load_checkpoint(ckpt)
            cal = calibrate(gen, list(val_imgs)[:64], render_size=args.render_size, min_gap=gap, device=args.device)
            gen.calibration = {k: cal[k] for k in ("temperature", "shrinkage", "gain")}
            out = save_checkpoint(Path(tmp) / f"gap{gap}.safetensors", gen, {**meta, "decode": cal})
            rep = evaluate(Colorizer(out, device=args.device, render_size=args.render_size, amp="off", vivid=0.0), held)
            m, g = rep["model"], rep["greyscale"]
            print(f"| {100 * gap:.0f}% | {cal['temperature']:g} | {cal['shrinkage']:g} | {cal['gain']:g} "
                  f"| {cal['val_ciede2000']:.2f} ({cal['val_ciede2000_grey']:.2f}) | {100 * cal['val_gap_closed']:.0f}% "
                  f"| {m['ciede2000']:.2f} ({g['ciede2000']:.2f}) | {100 * rep['gap_closed']:.0f}% "
                  f"| {100 * m['false_colour']:.2f}% |", flush=True)


if __name__ == "__main__":
    main()
